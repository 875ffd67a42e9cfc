// Command kube runs one of the upstream Kubernetes programs the end-to-end suite needs, from one
// binary to save link time and disk (what hyperkube did): the program is the name it was
// started as (a symlink kube-apiserver -> kube) or its first argument (kube kube-apiserver ...).
// Each entry is the upstream main, unchanged: the same command constructor, the same cli.Run.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's auth plugins, as in its main
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as in every main
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as in every main
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as in every main
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// programs maps a program name to its upstream main; args[0] is the program name.
var programs = map[string]func(args []string) int{
	"kube-apiserver":          cobraMain(apiserver.NewAPIServerCommand),
	"kube-controller-manager": cobraMain(controllermanager.NewControllerManagerCommand),
	"kube-scheduler":          cobraMain(func() *cobra.Command { return scheduler.NewSchedulerCommand() }),
	"kubelet": cobraMain(func() *cobra.Command {
		return kubelet.NewKubeletCommand(context.Background())
	}),
	"kube-proxy": cobraMain(proxy.NewProxyCommand),
	"kubectl": func(args []string) int {
		logs.GlogSetter(kubectl.GetLogVerbosity(args)) //nolint:errcheck // as upstream
		command := kubectl.NewDefaultKubectlCommand()
		command.SetArgs(args[1:])
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
		return 0
	},
	"etcd": func(args []string) int { etcdmain.Main(args); return 0 },
}

func cobraMain(newCommand func() *cobra.Command) func(args []string) int {
	return func(args []string) int {
		command := newCommand()
		command.SetArgs(args[1:])
		return cli.Run(command)
	}
}

func main() {
	args := os.Args
	if _, ok := programs[filepath.Base(args[0])]; !ok && len(args) > 1 {
		args = args[1:]
	}
	name := filepath.Base(args[0])
	run, ok := programs[name]
	if !ok {
		names := make([]string, 0, len(programs))
		for n := range programs {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: kube PROGRAM [ARGS...] (or a symlink named PROGRAM); PROGRAM is one of %v\n", names)
		os.Exit(2)
	}
	// Upstream mains read os.Args directly in places (kubectl's plugin handling, etcd).
	os.Args = args
	os.Exit(run(args))
}
