package suite

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

const (
	hotplugLabel = "edgefd.io/accel.e2e-hotplug"
	vethName     = "edgefd-e2e0"
	vethPeer     = "edgefd-e2e1"
)

// plugVeth creates the veth pair the e2e rule matches: real kernel uevents, real sysfs devices.
func plugVeth(t *testing.T) {
	t.Helper()
	run(t, "ip", "link", "add", vethName, "type", "veth", "peer", "name", vethPeer)
}

func unplugVeth(t *testing.T) {
	t.Helper()
	run(t, "ip", "link", "del", vethName)
}

// watchNodeLabel reports, on the returned channel, the time each change of the label's
// presence on the real node is seen (true: present).
func watchNodeLabel(ctx context.Context, t *testing.T, label string) <-chan labelEvent {
	t.Helper()
	node, err := getNode(ctx, env.node)
	if err != nil {
		t.Fatal(err)
	}
	w, err := client.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + env.node, ResourceVersion: node.ResourceVersion})
	if err != nil {
		t.Fatalf("watching node %s: %v", env.node, err)
	}
	out := make(chan labelEvent, 64)
	go func() {
		defer w.Stop()
		defer close(out)
		_, present := node.Labels[label]
		for ev := range w.ResultChan() {
			n, ok := ev.Object.(*corev1.Node)
			if !ok || ev.Type == watch.Error {
				continue
			}
			if _, now := n.Labels[label]; now != present {
				present = now
				out <- labelEvent{present: now, at: time.Now()}
			}
		}
	}()
	return out
}

type labelEvent struct {
	present bool
	at      time.Time
}

func waitLabelEvent(t *testing.T, events <-chan labelEvent, present bool, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("node watch closed while waiting for %s present=%v", hotplugLabel, present)
			}
			if ev.present == present {
				return ev.at
			}
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s present=%v\n%s\n%s", timeout, hotplugLabel, present,
				describeNode(env.node)(), describeLog("systemd-udevd")())
		}
	}
}

func TestHotplug(t *testing.T) {
	requireCluster(t)
	ns := testNamespace(t, "e2e-hotplug")
	_ = exec.Command("ip", "link", "del", vethName).Run() // left over from an interrupted run
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", vethName).Run() })

	t.Run("plugging a device labels the Node and schedules the pod waiting for it; unplugging removes the label", func(t *testing.T) {
		const runs = 10
		var toLabel, toScheduled, toUnlabel []time.Duration
		for i := 0; i < runs; i++ {
			name := fmt.Sprintf("waits-for-device-%d", i)
			pod := shellPod(name, "exec sleep 3600", corev1.RestartPolicyNever)
			pod.Spec.NodeSelector = map[string]string{hotplugLabel: "true"}
			// It must be Pending: no node has the device. The scheduler's cache can lag the
			// previous unplug by a moment (it then binds, and the kubelet rejects the pod:
			// NodeAffinity): such a pod is removed and created again, until one is Pending.
			poll(t, "pod "+name+" to be unschedulable", 30*time.Second, func(ctx context.Context) (bool, error) {
				p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					_, err = client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
					return false, err
				}
				if err != nil {
					return false, err
				}
				if p.Spec.NodeName != "" {
					deletePodNow(ns, name)
					return false, nil
				}
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodScheduled && c.Reason == "Unschedulable" {
						return true, nil
					}
				}
				return false, nil
			}, describePod(ns, name), describeNode(env.node))

			ctx, cancel := context.WithCancel(context.Background())
			labels := watchNodeLabel(ctx, t, hotplugLabel)
			current, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			podWatch, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{
				FieldSelector: "metadata.name=" + name, ResourceVersion: current.ResourceVersion})
			if err != nil {
				t.Fatal(err)
			}
			scheduled := make(chan time.Time, 1)
			go func() {
				for ev := range podWatch.ResultChan() {
					if p, ok := ev.Object.(*corev1.Pod); ok && p.Spec.NodeName != "" {
						scheduled <- time.Now()
						return
					}
				}
			}()

			plugged := time.Now()
			plugVeth(t)
			labelled := waitLabelEvent(t, labels, true, 30*time.Second)
			var bound time.Time
			select {
			case bound = <-scheduled:
			case <-time.After(60 * time.Second):
				t.Fatalf("pod %s not scheduled 60 s after the label appeared\n%s", name, describePod(ns, name)())
			}
			p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil || p.Spec.NodeName != env.node {
				t.Fatalf("pod %s bound to %q, want %s", name, p.Spec.NodeName, env.node)
			}
			deletePodNow(ns, name)
			unplugged := time.Now()
			unplugVeth(t)
			unlabelled := waitLabelEvent(t, labels, false, 30*time.Second)
			podWatch.Stop()
			cancel()

			toLabel = append(toLabel, labelled.Sub(plugged))
			toScheduled = append(toScheduled, bound.Sub(plugged))
			toUnlabel = append(toUnlabel, unlabelled.Sub(unplugged))
		}
		recordFigure("hotplug_plug_to_label_ms", map[string]any{"median": ms(median(toLabel)), "runs": msList(toLabel)})
		recordFigure("hotplug_plug_to_pod_scheduled_ms", map[string]any{"median": ms(median(toScheduled)),
			"runs": msList(toScheduled)})
		recordFigure("hotplug_unplug_to_label_removed_ms", map[string]any{"median": ms(median(toUnlabel)),
			"runs": msList(toUnlabel)})
		sorted := append([]time.Duration(nil), toScheduled...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		t.Logf("plug -> label: median %v; plug -> pod scheduled: median %v (all: %v); unplug -> label gone: median %v",
			median(toLabel).Round(time.Millisecond), median(toScheduled).Round(time.Millisecond), sorted,
			median(toUnlabel).Round(time.Millisecond))
	})
}
