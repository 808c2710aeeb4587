package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

type packageJSON struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Dependencies map[string]string `json:"dependencies"`
	Pulumi       struct {
		Resource bool   `json:"resource"`
		Name     string `json:"name"`
		Version  string `json:"version"`
		Server   string `json:"server"`
	} `json:"pulumi"`
}

func readPackageJSON(path string) (*packageJSON, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pkg packageJSON
	if err := json.Unmarshal(data, &pkg); err != nil {
		return nil, err
	}
	return &pkg, nil
}

// requiredPlugins walks node_modules (scoped and nested) for packages that declare
// `"pulumi": {"resource": true}`: each one needs the resource plugin of that name
// and version.
func requiredPlugins(programDir string) ([]*pulumirpc.PluginDependency, error) {
	seen := map[string]*pulumirpc.PluginDependency{}
	root := filepath.Join(programDir, "node_modules")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() || d.Name() != "package.json" {
			return nil
		}
		// Only package roots: <...>/node_modules/<name>/package.json or @scope/<name>/package.json.
		parent := filepath.Base(filepath.Dir(filepath.Dir(path)))
		grand := filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(path))))
		if parent != "node_modules" && !(strings.HasPrefix(parent, "@") && grand == "node_modules") {
			return nil
		}
		pkg, err := readPackageJSON(path)
		if err != nil || !pkg.Pulumi.Resource {
			return nil //nolint:nilerr // unreadable package.json files are not plugins
		}
		name := pkg.Pulumi.Name
		if name == "" {
			name = strings.TrimPrefix(pkg.Name, "@pulumi/")
		}
		version := pkg.Pulumi.Version
		if version == "" {
			version = pkg.Version
		}
		if !strings.HasPrefix(version, "v") {
			version = "v" + version
		}
		seen[name+"@"+version] = &pulumirpc.PluginDependency{
			Name: name, Kind: "resource", Version: version, Server: pkg.Pulumi.Server,
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	plugins := make([]*pulumirpc.PluginDependency, 0, len(keys))
	for _, k := range keys {
		plugins = append(plugins, seen[k])
	}
	return plugins, nil
}

// installedDependencies lists the program's direct dependencies at their installed versions.
func installedDependencies(programDir string) ([]*pulumirpc.DependencyInfo, error) {
	pkg, err := readPackageJSON(filepath.Join(programDir, "package.json"))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(pkg.Dependencies))
	for name := range pkg.Dependencies {
		names = append(names, name)
	}
	sort.Strings(names)
	deps := make([]*pulumirpc.DependencyInfo, 0, len(names))
	for _, name := range names {
		version := pkg.Dependencies[name]
		if installed, err := readPackageJSON(filepath.Join(programDir, "node_modules", name, "package.json")); err == nil {
			version = installed.Version
		}
		deps = append(deps, &pulumirpc.DependencyInfo{Name: name, Version: version})
	}
	return deps, nil
}
