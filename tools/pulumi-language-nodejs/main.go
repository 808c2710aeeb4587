// Command pulumi-language-nodejs is a Node.js language host for the Pulumi engine.
//
// Why it exists: upstream's host lives in an untagged Go sub-module
// (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3) that is only
// reachable by commit pseudo-version, and the Go module proxy available to our
// machines refuses those. This host speaks the same gRPC protocol (from the
// tagged, served sdk/v3 module) and launches the real @pulumi/pulumi runner
// (`@pulumi/pulumi/cmd/run`) exactly as the engine expects. `npm run setup`
// prefers upstream's host whenever it can be had.
package main

import (
	"fmt"
	"os"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"google.golang.org/grpc"
)

// version is set with -ldflags "-X main.version=...".
var version = "3.259.0-comfyume"

func main() {
	engineAddress, tracing, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: %v\n", err)
		os.Exit(2)
	}
	host := &languageHost{engineAddress: engineAddress, tracing: tracing}
	cancel := make(chan bool)
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: could not start the gRPC server: %v\n", err)
		os.Exit(1)
	}
	// The engine reads the port from the first line of our stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: %v\n", err)
		os.Exit(1)
	}
}

// parseArgs accepts the engine's plugin flags (--logtostderr, -v=N, --logflow,
// --tracing <url>, and legacy -name=value runtime flags) and returns the engine
// address, which is the last positional argument.
func parseArgs(args []string) (engineAddress, tracing string, err error) {
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--tracing" || arg == "-tracing":
			if i+1 < len(args) {
				tracing = args[i+1]
				i++
			}
		case strings.HasPrefix(arg, "-"):
			if name, value, ok := strings.Cut(strings.TrimLeft(arg, "-"), "="); ok && name == "tracing" {
				tracing = value
			}
		default:
			positional = append(positional, arg)
		}
	}
	if len(positional) == 0 {
		return "", "", fmt.Errorf("missing the engine address argument")
	}
	return positional[len(positional)-1], tracing, nil
}
