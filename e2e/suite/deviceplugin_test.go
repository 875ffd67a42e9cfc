package suite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"edgefd.io/e2e/internal/edgefdcli"
)

const pluginSelector = "app.kubernetes.io/name=edgefd-deviceplugin"

// bigCoreSelector picks the real node by edgefd labels alone: big.LITTLE with Cortex-A72 big
// cores (the fixture); the RK3588 paper board has Cortex-A76 ones.
var bigCoreSelector = map[string]string{
	"edgefd.io/cpu.heterogeneous": "true",
	"edgefd.io/cpu.big.model":     "cortex-a72",
}

// expectedResources is what the host's edgefd-deviceplugin --list reports over the inputs the
// DaemonSet pod reads: healthy devices per resource.
func expectedResources(t *testing.T) map[string]int64 {
	t.Helper()
	out := run(t, filepath.Join(env.repo, "build", "deviceplugin", "edgefd-deviceplugin"), "--list",
		"--root", env.nodeRoot, "--udev", "--config",
		filepath.Join(env.repo, "e2e", "deploy", "rules", "rules.yaml"), "--log-level", "error")
	counts, err := edgefdcli.PluginResources([]byte(out))
	if err != nil {
		t.Fatalf("edgefd-deviceplugin --list: %v\n%s", err, out)
	}
	return counts
}

func edgefdAllocatable(node *corev1.Node) map[string]int64 {
	out := map[string]int64{}
	for name, q := range node.Status.Allocatable {
		if strings.HasPrefix(string(name), "edgefd.io/") {
			out[string(name)] = q.Value()
		}
	}
	return out
}

func sameCounts(want, got map[string]int64) bool {
	if len(want) != len(got) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func waitAllocatable(t *testing.T, want map[string]int64, timeout time.Duration) time.Time {
	t.Helper()
	var seen time.Time
	poll(t, fmt.Sprintf("node %s to advertise %v", env.node, want), timeout, func(ctx context.Context) (bool, error) {
		n, err := getNode(ctx, env.node)
		if err != nil {
			return false, err
		}
		if sameCounts(want, edgefdAllocatable(n)) {
			seen = time.Now()
			return true, nil
		}
		return false, nil
	}, describeNode(env.node), describeLog("kubelet"))
	return seen
}

// bigCores reads the fixture: the CPUs whose cpu_capacity is the largest.
func bigCores(t *testing.T) map[int]bool {
	t.Helper()
	capacity := map[int]int{}
	top := 0
	for cpu := 0; ; cpu++ {
		data, err := os.ReadFile(filepath.Join(env.nodeRoot, "sys/devices/system/cpu",
			fmt.Sprintf("cpu%d", cpu), "cpu_capacity"))
		if err != nil {
			break
		}
		c, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatalf("fixture cpu%d/cpu_capacity: %v", cpu, err)
		}
		capacity[cpu] = c
		top = max(top, c)
	}
	big := map[int]bool{}
	for cpu, c := range capacity {
		if c == top {
			big[cpu] = true
		}
	}
	if len(big) == 0 {
		t.Fatalf("no CPUs in the fixture %s", env.nodeRoot)
	}
	return big
}

func withLimits(pod *corev1.Pod, limits map[string]string) *corev1.Pod {
	list := corev1.ResourceList{}
	for k, v := range limits {
		list[corev1.ResourceName(k)] = resource.MustParse(v)
	}
	pod.Spec.Containers[0].Resources.Limits = list
	return pod
}

// envValue finds NAME=value in a log.
func envValue(logs, name string) (string, bool) {
	for _, line := range strings.Split(logs, "\n") {
		if v, ok := strings.CutPrefix(line, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func TestDevicePlugin(t *testing.T) {
	requireCluster(t)
	ns := testNamespace(t, "e2e-deviceplugin")

	t.Run("the device plugin registers with the kubelet and the Node advertises edgefd.io resources", func(t *testing.T) {
		want := expectedResources(t)
		if want["edgefd.io/big-cpu"] == 0 || want["edgefd.io/e2e-tun"] == 0 {
			t.Fatalf("the host's --list has no big-cpu or e2e-tun: fixture or rules did not apply: %v", want)
		}
		waitAllocatable(t, want, time.Minute)
		registered, err := metric(pluginMetrics, "edgefd_deviceplugin_registered")
		if err != nil || registered < float64(len(want)) {
			t.Fatalf("edgefd_deviceplugin_registered = %v (%v), want %d resources registered", registered, err, len(want))
		}
	})

	t.Run("a pod requesting edgefd.io/big-cpu: 2 gets two big cores", func(t *testing.T) {
		big := bigCores(t)
		script := `echo "EDGEFD_BIG_CPUS=$EDGEFD_BIG_CPUS"
taskset -c "$EDGEFD_BIG_CPUS" true && echo pinned=ok
echo started; exec sleep 3600`
		var startTimes []time.Duration
		for i := 0; i < 5; i++ {
			name := fmt.Sprintf("big-cpu-%d", i)
			pod := withLimits(shellPod(name, script, corev1.RestartPolicyNever), map[string]string{
				"edgefd.io/big-cpu": "2"})
			pod.Spec.NodeSelector = bigCoreSelector
			created := time.Now()
			createPod(t, ns, pod)
			running := waitPodPhase(t, ns, name, corev1.PodRunning, 2*time.Minute)
			startTimes = append(startTimes, time.Since(created))
			if running.Spec.NodeName != env.node {
				t.Fatalf("pod landed on %s, want the real node %s", running.Spec.NodeName, env.node)
			}
			var logs string
			poll(t, "the pod to print its environment", 30*time.Second, func(context.Context) (bool, error) {
				l, err := podLogs(ns, name, "main")
				logs = l
				return err == nil && strings.Contains(l, "started"), nil
			}, describePod(ns, name))
			value, ok := envValue(logs, "EDGEFD_BIG_CPUS")
			cpus := strings.Split(value, ",")
			if !ok || len(cpus) != 2 {
				t.Fatalf("EDGEFD_BIG_CPUS = %q, want two cores\n%s", value, describePod(ns, name)())
			}
			for _, c := range cpus {
				n, err := strconv.Atoi(c)
				if err != nil || !big[n] {
					t.Fatalf("EDGEFD_BIG_CPUS = %q: cpu %q is not a big core (big: %v)", value, c, big)
				}
			}
			if !strings.Contains(logs, "pinned=ok") {
				t.Fatalf("taskset -c %s failed inside the container:\n%s", value, logs)
			}
			deletePodNow(ns, name)
			poll(t, "pod "+name+" to be gone", time.Minute, func(ctx context.Context) (bool, error) {
				_, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				return apierrors.IsNotFound(err), nil
			})
		}
		sorted := append([]time.Duration(nil), startTimes...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		recordFigure("pod_create_to_running_big_cpu_ms", map[string]any{
			"median": ms(median(startTimes)), "runs": msList(startTimes)})
		t.Logf("pod create -> Running with edgefd.io/big-cpu: 2: median %v of %d (%v)",
			median(startTimes).Round(time.Millisecond), len(startTimes), sorted)
	})

	t.Run("a pod asking for more big cores than any node has stays Pending: Insufficient edgefd.io/big-cpu", func(t *testing.T) {
		pod := withLimits(shellPod("too-many-big-cpus", "exec sleep 3600", corev1.RestartPolicyNever),
			map[string]string{"edgefd.io/big-cpu": "5"})
		pod.Spec.NodeSelector = map[string]string{"edgefd.io/cpu.heterogeneous": "true"}
		createPod(t, ns, pod)
		message := waitUnschedulable(t, ns, pod.Name)
		if !strings.Contains(message, "Insufficient edgefd.io/big-cpu") {
			t.Fatalf("scheduler says %q, want it to name Insufficient edgefd.io/big-cpu", message)
		}
		p, err := client.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" {
			t.Fatalf("pod is not Pending and unbound\n%s", describePod(ns, pod.Name)())
		}
		deletePodNow(ns, pod.Name)
	})

	t.Run("a pod requesting the e2e accelerator sees its device node", func(t *testing.T) {
		withDevice := withLimits(shellPod("with-accelerator", `set -e
test -c /dev/net/tun
echo "EDGEFD_E2E_TUN_DEVNODES=$EDGEFD_E2E_TUN_DEVNODES"
echo "EDGEFD_E2E_TUN_DEVICES=$EDGEFD_E2E_TUN_DEVICES"
exec 3<>/dev/net/tun && echo opened=ok`, corev1.RestartPolicyNever), map[string]string{"edgefd.io/e2e-tun": "1"})
		withDevice.Spec.NodeSelector = map[string]string{"edgefd.io/accel.e2e-tun": "true"}
		createPod(t, ns, withDevice)
		// The control: the same image without the request has no /dev/net/tun.
		without := shellPod("without-accelerator", `test ! -e /dev/net/tun && echo absent=ok`,
			corev1.RestartPolicyNever)
		without.Spec.NodeSelector = map[string]string{"edgefd.io/accel.e2e-tun": "true"}
		createPod(t, ns, without)
		waitPodPhase(t, ns, withDevice.Name, corev1.PodSucceeded, 2*time.Minute)
		waitPodPhase(t, ns, without.Name, corev1.PodSucceeded, 2*time.Minute)
		logs, err := podLogs(ns, withDevice.Name, "main")
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := envValue(logs, "EDGEFD_E2E_TUN_DEVNODES"); v != "/dev/net/tun" {
			t.Errorf("EDGEFD_E2E_TUN_DEVNODES = %q, want /dev/net/tun\n%s", v, logs)
		}
		if v, _ := envValue(logs, "EDGEFD_E2E_TUN_DEVICES"); v == "" {
			t.Errorf("EDGEFD_E2E_TUN_DEVICES is empty\n%s", logs)
		}
		if !strings.Contains(logs, "opened=ok") {
			t.Errorf("the container could not open /dev/net/tun:\n%s", logs)
		}
		control, _ := podLogs(ns, without.Name, "main")
		if !strings.Contains(control, "absent=ok") {
			t.Errorf("a pod without the request saw /dev/net/tun:\n%s", control)
		}
	})

	t.Run("a device plugin pod started from the manifests makes the kubelet advertise its resources", func(t *testing.T) {
		want := expectedResources(t)
		reapplyOnFailure(t, "e2e/deploy/deviceplugin")
		kubectl(t, "-n", edgefdNamespace, "delete", "daemonset", "edgefd-deviceplugin", "--wait=true")
		poll(t, "the device plugin pod to be gone", time.Minute, func(ctx context.Context) (bool, error) {
			pods, err := client.CoreV1().Pods(edgefdNamespace).List(ctx, metav1.ListOptions{LabelSelector: pluginSelector})
			return err == nil && len(pods.Items) == 0, err
		})
		// Without its plugin the kubelet marks the devices unhealthy: allocatable drops to 0.
		zero := map[string]int64{}
		for k := range want {
			zero[k] = 0
		}
		waitAllocatable(t, zero, time.Minute)
		applied := time.Now()
		kubectl(t, "apply", "-k", filepath.Join(env.repo, "e2e", "deploy", "deviceplugin"))
		var pod corev1.Pod
		poll(t, "the new device plugin pod's container to run", 2*time.Minute, func(ctx context.Context) (bool, error) {
			pods, err := client.CoreV1().Pods(edgefdNamespace).List(ctx, metav1.ListOptions{LabelSelector: pluginSelector})
			if err != nil {
				return false, err
			}
			for _, p := range pods.Items {
				if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil {
					pod = p
					return true, nil
				}
			}
			return false, nil
		})
		advertised := waitAllocatable(t, want, time.Minute)
		started, err := logLineTime(pod.Namespace, pod.Name, "")
		if err != nil {
			t.Fatal(err)
		}
		var registered time.Time
		for name := range want {
			at, err := logLineTime(pod.Namespace, pod.Name, "registered "+name+" ")
			if err != nil {
				t.Fatal(err)
			}
			if at.After(registered) {
				registered = at
			}
		}
		recordFigure("plugin_apply_to_allocatable_ms", ms(advertised.Sub(applied)))
		recordFigure("plugin_process_start_to_registered_ms", ms(registered.Sub(started)))
		recordFigure("plugin_process_start_to_allocatable_ms", ms(advertised.Sub(started)))
		t.Logf("kubectl apply -> allocatable %v; plugin process start (first log line) -> every resource registered %v, "+
			"-> allocatable in the Node %v (the kubelet posts node status every 10 s)",
			advertised.Sub(applied).Round(time.Millisecond), registered.Sub(started).Round(time.Millisecond),
			advertised.Sub(started).Round(time.Millisecond))
	})
}
