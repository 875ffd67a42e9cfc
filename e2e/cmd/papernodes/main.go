// Command papernodes keeps "paper nodes" in the e2e cluster: Node objects for real boards
// (devicetree blobs) that have no kubelet, so the scheduler can be tested across heterogeneous
// hardware this machine does not have. For each board it creates the Node with the capacity a
// kubelet would publish there: the edgefd.io/* resources `edgefd-deviceplugin --list --dtb`
// reports, the core count `edgefd-labeller --dry-run --dtb` reports, and a declared 4Gi of
// memory and 110 pods (a blob does not say how much memory a board has). It then does what a
// kubelet's heartbeat does, and nothing else: it renews the Node's lease in kube-node-lease every
// 10 s and marks it Ready, so the node lifecycle controller does not taint it unreachable.
// Pods bound to a paper node never start; the binding is what tests assert. The Node carries
// the annotation edgefd.io/e2e-paper-node=true and a Ready condition whose reason says so.
//
//	papernodes --kubeconfig K --deviceplugin edgefd-deviceplugin --labeller edgefd-labeller \
//	    --board rock-5b=/path/rock-5b.dtb ...
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"edgefd.io/e2e/internal/edgefdcli"
)

const (
	// PaperNodeAnnotation marks a Node that has no kubelet behind it.
	PaperNodeAnnotation = "edgefd.io/e2e-paper-node"
	// PaperNodeLabel keeps the edgefd DaemonSets off paper nodes (e2e/deploy overlays).
	PaperNodeLabel = "e2e.edgefd.io/paper-node"
	leaseSeconds   = 40
	renewEvery     = 10 * time.Second
)

type boardFlags []string

func (b *boardFlags) String() string     { return strings.Join(*b, ",") }
func (b *boardFlags) Set(v string) error { *b = append(*b, v); return nil }

type board struct {
	node     string
	dtb      string
	capacity corev1.ResourceList
	arch     string
}

func inspect(name, dtb, pluginBin, labellerBin string) (*board, error) {
	list, err := exec.Command(pluginBin, "--list", "--dtb", dtb, "--log-level", "error").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list --dtb %s: %w", pluginBin, dtb, err)
	}
	resources, err := edgefdcli.PluginResources(list)
	if err != nil {
		return nil, fmt.Errorf("%s --list --dtb %s: %w", pluginBin, dtb, err)
	}
	dry, err := exec.Command(labellerBin, "--dry-run", "--dtb", dtb, "--output", "json",
		"--log-level", "error").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --dry-run --dtb %s: %w", labellerBin, dtb, err)
	}
	var labels struct {
		Labels map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(dry, &labels); err != nil {
		return nil, fmt.Errorf("%s --dry-run --dtb %s --output json: %w", labellerBin, dtb, err)
	}
	cores, err := strconv.Atoi(labels.Labels["edgefd.io/cpu.cores"])
	if err != nil || cores <= 0 {
		return nil, fmt.Errorf("%s: no edgefd.io/cpu.cores in the dry run", dtb)
	}
	b := &board{node: "paper-" + name, dtb: dtb, arch: labels.Labels["edgefd.io/cpu.arch"],
		capacity: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewQuantity(int64(cores), resource.DecimalSI),
			corev1.ResourceMemory: resource.MustParse("4Gi"),
			corev1.ResourcePods:   resource.MustParse("110"),
		}}
	for r, n := range resources {
		b.capacity[corev1.ResourceName(r)] = *resource.NewQuantity(n, resource.DecimalSI)
	}
	return b, nil
}

func readyCondition(now metav1.Time) corev1.NodeCondition {
	return corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		Reason: "PaperNode", LastHeartbeatTime: now, LastTransitionTime: now,
		Message: "paper node of the e2e suite: no kubelet, leases renewed by papernodes; pods bound here never start"}
}

func ensureNode(ctx context.Context, client kubernetes.Interface, b *board) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        b.node,
		Annotations: map[string]string{PaperNodeAnnotation: "true", "edgefd.io/e2e-dtb": b.dtb},
		Labels: map[string]string{"kubernetes.io/hostname": b.node, "kubernetes.io/os": "linux",
			"kubernetes.io/arch": b.arch, PaperNodeLabel: "true"},
	}}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return err
	}
	// The node controllers write to a new Node too: re-read and retry on a conflict.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := client.CoreV1().Nodes().Get(ctx, b.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		current.Status.Capacity = b.capacity
		current.Status.Allocatable = b.capacity
		current.Status.Conditions = []corev1.NodeCondition{readyCondition(now)}
		current.Status.NodeInfo = corev1.NodeSystemInfo{Architecture: b.arch, OperatingSystem: "linux",
			KubeletVersion: "paper"}
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, current, metav1.UpdateOptions{})
		return err
	})
}

func renew(ctx context.Context, client kubernetes.Interface, b *board) error {
	leases := client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, b.node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: b.node, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(b.node),
				LeaseDurationSeconds: ptr.To[int32](leaseSeconds), RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

func run() error {
	kubeconfig := flag.String("kubeconfig", "", "admin kubeconfig")
	pluginBin := flag.String("deviceplugin", "edgefd-deviceplugin", "edgefd-deviceplugin binary")
	labellerBin := flag.String("labeller", "edgefd-labeller", "edgefd-labeller binary")
	var boards boardFlags
	flag.Var(&boards, "board", "NAME=DTB (repeatable)")
	flag.Parse()
	if *kubeconfig == "" || len(boards) == 0 {
		return fmt.Errorf("usage: papernodes --kubeconfig FILE --board NAME=DTB...")
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	var all []*board
	for _, arg := range boards {
		name, dtb, ok := strings.Cut(arg, "=")
		if !ok {
			return fmt.Errorf("--board %q: want NAME=DTB", arg)
		}
		b, err := inspect(name, dtb, *pluginBin, *labellerBin)
		if err != nil {
			return err
		}
		all = append(all, b)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	for _, b := range all {
		if err := ensureNode(ctx, client, b); err != nil {
			return fmt.Errorf("node %s: %w", b.node, err)
		}
		fmt.Printf("paper node %s: capacity %v\n", b.node, b.capacity)
	}
	ticker := time.NewTicker(renewEvery)
	defer ticker.Stop()
	for {
		for _, b := range all {
			if err := renew(ctx, client, b); err != nil && ctx.Err() == nil {
				// The API server may be restarting (a fault test does that): try again next tick.
				fmt.Fprintf(os.Stderr, "lease of %s: %v\n", b.node, err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "papernodes:", err)
		os.Exit(1)
	}
}
