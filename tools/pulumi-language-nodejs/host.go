package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kballard/go-shellquote"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The runner exits with this code after it has already shown the user an error,
// so the engine must not print a second, generic one.
const exitAfterReportedError = 32

type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
	tracing       string
}

// runtimeOptions are the `runtime.options` of Pulumi.yaml that we honour.
type runtimeOptions struct {
	typescript bool
	nodeargs   []string
	tsconfig   string
}

func optionsOf(info *pulumirpc.ProgramInfo) (runtimeOptions, error) {
	opts := runtimeOptions{typescript: true}
	if info == nil || info.GetOptions() == nil {
		return opts, nil
	}
	m := info.GetOptions().AsMap()
	if v, ok := m["typescript"].(bool); ok {
		opts.typescript = v
	}
	if v, ok := m["tsconfig"].(string); ok {
		opts.tsconfig = v
	}
	if v, ok := m["nodeargs"].(string); ok && v != "" {
		split, err := shellquote.Split(v)
		if err != nil {
			return opts, fmt.Errorf("runtime option nodeargs %q: %w", v, err)
		}
		opts.nodeargs = split
	}
	return opts, nil
}

func nodeBinary() (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", errors.New("could not find `node` on PATH; install Node.js >= 22 or run `npm run setup`")
	}
	return node, nil
}

// resolveFrom asks Node where a module resolves from dir, as the program itself would.
func resolveFrom(node, dir, module string) (string, error) {
	script := "process.stdout.write(require.resolve(process.argv[1], {paths: [process.argv[2]]}))"
	out, err := exec.Command(node, "-e", script, module, dir).Output()
	if err != nil {
		return "", fmt.Errorf("could not resolve %s from %s (run `npm ci` there): %w", module, dir, err)
	}
	return string(out), nil
}

func (h *languageHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	programDir, entryPoint, rootDir := req.GetPwd(), req.GetProgram(), ""
	if info != nil {
		programDir, entryPoint, rootDir = info.GetProgramDirectory(), info.GetEntryPoint(), info.GetRootDirectory()
	}
	opts, err := optionsOf(info)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	node, err := nodeBinary()
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	runner, err := resolveFrom(node, programDir, "@pulumi/pulumi/cmd/run")
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}

	args := append([]string{}, opts.nodeargs...)
	args = append(args, runner,
		"--monitor", req.GetMonitorAddress(),
		"--engine", h.engineAddress,
		"--organization", req.GetOrganization(),
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--pwd", programDir,
		"--root-directory", rootDir,
	)
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	if req.GetParallel() > 0 {
		args = append(args, "--parallel", strconv.Itoa(int(req.GetParallel())))
	}
	if h.tracing != "" {
		args = append(args, "--tracing", h.tracing)
	}
	args = append(args, entryPoint)
	args = append(args, req.GetArgs()...)

	env, err := programEnv(req, opts)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = programDir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if exit.ExitCode() == exitAfterReportedError {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exit.ExitCode())}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Problem executing program (could not run language executor): %v", err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// programEnv passes config the way @pulumi/pulumi reads it: JSON in environment variables.
func programEnv(req *pulumirpc.RunRequest, opts runtimeOptions) ([]string, error) {
	configMap := req.GetConfig()
	if configMap == nil {
		configMap = map[string]string{} // the runner expects an object, never null
	}
	config, err := json.Marshal(configMap)
	if err != nil {
		return nil, err
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secrets, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(secrets))
	if opts.typescript {
		env = append(env, "PULUMI_NODEJS_TYPESCRIPT=true")
	}
	if opts.tsconfig != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+opts.tsconfig)
	}
	return env, nil
}

func (h *languageHost) GetRequiredPackages(ctx context.Context,
	req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	plugins, err := requiredPlugins(req.GetInfo().GetProgramDirectory())
	if err != nil {
		return nil, err
	}
	packages := make([]*pulumirpc.PackageDependency, 0, len(plugins))
	for _, p := range plugins {
		packages = append(packages, &pulumirpc.PackageDependency{
			Name: p.GetName(), Kind: p.GetKind(), Version: p.GetVersion(), Server: p.GetServer(),
		})
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: packages}, nil
}

func (h *languageHost) GetRequiredPlugins(ctx context.Context,
	req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	dir := req.GetInfo().GetProgramDirectory()
	if dir == "" {
		dir = req.GetPwd() //nolint:staticcheck // older engines
	}
	plugins, err := requiredPlugins(dir)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPluginsResponse{Plugins: plugins}, nil
}

func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (h *languageHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	node, err := nodeBinary()
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{Executable: node, Version: strings.TrimSpace(string(out))}, nil
}

func (h *languageHost) GetProgramDependencies(ctx context.Context,
	req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	deps, err := installedDependencies(req.GetInfo().GetProgramDirectory())
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}

// InstallDependencies runs `npm ci` (or `npm install` without a lockfile), streaming its output.
func (h *languageHost) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	server grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	dir := req.GetInfo().GetProgramDirectory()
	verb := "install"
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err == nil {
		verb = "ci"
	}
	cmd := exec.Command("npm", verb, "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Stdout = streamWriter(func(b []byte) error {
		return server.Send(&pulumirpc.InstallDependenciesResponse{Stdout: b})
	})
	cmd.Stderr = streamWriter(func(b []byte) error {
		return server.Send(&pulumirpc.InstallDependenciesResponse{Stderr: b})
	})
	return cmd.Run()
}

// RunPlugin starts a Node.js plugin (policy packs) from its directory: `node [nodeargs] <dir> args...`.
func (h *languageHost) RunPlugin(req *pulumirpc.RunPluginRequest,
	server grpc.ServerStreamingServer[pulumirpc.RunPluginResponse],
) error {
	node, err := nodeBinary()
	if err != nil {
		return err
	}
	opts, err := optionsOf(req.GetInfo())
	if err != nil {
		return err
	}
	dir := req.GetInfo().GetProgramDirectory()
	if dir == "" {
		dir = req.GetProgram()
	}
	// Resolve the package's entry ourselves: `node <dir>` would prefer a sibling <dir>.js/.json.
	entry, err := resolveFrom(node, dir, "./")
	if err != nil {
		return err
	}
	args := append(append([]string{}, opts.nodeargs...), entry)
	args = append(args, req.GetArgs()...)
	cmd := exec.Command(node, args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = append(os.Environ(), req.GetEnv()...)
	cmd.Stdout = streamWriter(func(b []byte) error {
		return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: b}})
	})
	cmd.Stderr = streamWriter(func(b []byte) error {
		return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: b}})
	})
	code := 0
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return err
		}
		code = exit.ExitCode()
	}
	return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(code)}})
}

type streamWriter func([]byte) error

func (w streamWriter) Write(b []byte) (int, error) {
	// gRPC may keep the slice after Send returns; hand it a copy.
	if err := w(append([]byte(nil), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}
