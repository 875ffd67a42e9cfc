package suite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

const (
	admissionPolicy = "edgefd-labeller-own-node"
	vapProbeLabel   = "edgefd.io/e2e-vap"
)

// labellerToken is a fresh token of the labeller's service account, bound to `node` when it
// is not empty (as the kubelet's projected token is bound to the pod, and so to its node).
func labellerToken(t *testing.T, node string) string {
	t.Helper()
	ctx := context.Background()
	spec := authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}
	if node != "" {
		n, err := getNode(ctx, node)
		if err != nil {
			t.Fatalf("node %s: %v", node, err)
		}
		spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Node", APIVersion: "v1",
			Name: n.Name, UID: n.UID}
	}
	token, err := client.CoreV1().ServiceAccounts(edgefdNamespace).CreateToken(ctx, "edgefd-labeller",
		&authenticationv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for edgefd-labeller (bound to %q): %v", node, err)
	}
	return token.Status.Token
}

// labellerClient is the labeller's service account with a fresh token (labellerToken).
func labellerClient(t *testing.T, node string) kubernetes.Interface {
	t.Helper()
	config := rest.AnonymousClientConfig(restConfig)
	config.BearerToken = labellerToken(t, node)
	return kubernetes.NewForConfigOrDie(config)
}

func describePolicy() string {
	p, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(context.Background(),
		admissionPolicy, metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("policy %s: %v", admissionPolicy, err)
	}
	status, _ := json.MarshalIndent(p.Status, "", "  ")
	return fmt.Sprintf("policy %s generation %d, status:\n%s", admissionPolicy, p.Generation, status)
}

// expectRefused patches `node` as `sa` and wants a 403 whose message contains `because`, and
// the Node unchanged.
func expectRefused(t *testing.T, sa kubernetes.Interface, node, patch, because string) {
	t.Helper()
	ctx := context.Background()
	before, err := getNode(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sa.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), because) {
		t.Errorf("patch %s of node %s as edgefd-labeller: got %v, want Forbidden saying %q", patch, node, err,
			because)
	}
	after, err := getNode(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	// The TTL controller annotates every Node (node.alpha.kubernetes.io/ttl), a fresh one a
	// moment after it is created: that is no change the patch made.
	annotations := func(n *corev1.Node) map[string]string {
		out := map[string]string{}
		for k, v := range n.Annotations {
			if k != ttlAnnotation {
				out[k] = v
			}
		}
		return out
	}
	if diffLabels(before.Labels, after.Labels) != "" || after.Spec.Unschedulable != before.Spec.Unschedulable ||
		diffLabels(annotations(before), annotations(after)) != "" {
		t.Errorf("node %s changed although the patch %s was refused:\n%s%s", node, patch,
			diffLabels(before.Labels, after.Labels), diffLabels(annotations(before), annotations(after)))
	}
}

const ttlAnnotation = "node.alpha.kubernetes.io/ttl"

// The admission policy of manifests/labeller (issue 12, defect 10) on the real API server: the
// labeller's token may change its own Node's edgefd labels and the owned-labels annotation,
// and nothing else of any Node.
func TestAdmissionPolicy(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()

	// The policy is in force and its CEL type-checks against Node.
	poll(t, "policy "+admissionPolicy+" to be type-checked", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, admissionPolicy,
			metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.Status.ObservedGeneration == p.Generation && p.Status.TypeChecking != nil, nil
	}, describePolicy)
	p, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, admissionPolicy,
		metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w := p.Status.TypeChecking.ExpressionWarnings; len(w) > 0 {
		t.Fatalf("the policy's expressions do not type-check against Node: %+v", w)
	}
	if p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionv1.Fail {
		t.Errorf("failurePolicy %v, want Fail", p.Spec.FailurePolicy)
	}

	own := labellerClient(t, env.node)
	// Another Node to aim at: a throw-away one (no kubelet needed).
	other := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "e2e-vap-other",
		Labels: map[string]string{"team": "vision"}}}
	if _, err := client.CoreV1().Nodes().Create(ctx, other, metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating node %s: %v", other.Name, err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Nodes().Delete(context.Background(), other.Name, metav1.DeleteOptions{})
	})

	// Policies take effect asynchronously after they are created: wait for the first denial.
	poll(t, "the policy to refuse a patch of another Node", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := own.CoreV1().Nodes().Patch(ctx, other.Name, types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"`+vapProbeLabel+`":"1"}}}`), metav1.PatchOptions{})
		if err == nil {
			// Let through before the policy was loaded: undo it and try again.
			patchNode(t, other.Name, `{"metadata":{"labels":{"`+vapProbeLabel+`":null}}}`)
			return false, nil
		}
		return apierrors.IsForbidden(err), nil
	}, describePolicy)

	t.Run("the labeller's token may not change another Node", func(t *testing.T) {
		expectRefused(t, own, other.Name, `{"metadata":{"labels":{"`+vapProbeLabel+`":"1"}}}`,
			"edgefd-labeller of node "+env.node+" may not change Node "+other.Name)
		expectRefused(t, own, other.Name, `{"metadata":{"labels":{"team":null}}}`, "may not change Node")
	})

	t.Run("the labeller's token may not change labels outside edgefd's prefixes", func(t *testing.T) {
		expectRefused(t, own, env.node, `{"metadata":{"labels":{"team":"vision"}}}`,
			"only add, change or remove labels under edgefd.io/ and beta.devicetree.org/")
		expectRefused(t, own, env.node, `{"metadata":{"labels":{"kubernetes.io/hostname":null}}}`,
			"under edgefd.io/ and beta.devicetree.org/")
		expectRefused(t, own, env.node, `{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":""}}}`,
			"under edgefd.io/ and beta.devicetree.org/")
	})

	t.Run("the labeller's token may not cordon, taint or annotate", func(t *testing.T) {
		expectRefused(t, own, env.node, `{"spec":{"unschedulable":true}}`, "may not change a Node's spec")
		expectRefused(t, own, env.node, `{"spec":{"taints":[{"key":"x","effect":"NoSchedule"}]}}`,
			"may not change a Node's spec")
		expectRefused(t, own, env.node, `{"metadata":{"annotations":{"example.com/x":"y"}}}`,
			"may only change the annotation edgefd.io/owned-labels")
	})

	t.Run("a token that names no node may change no Node", func(t *testing.T) {
		unbound := labellerClient(t, "")
		expectRefused(t, unbound, env.node, `{"metadata":{"labels":{"`+vapProbeLabel+`":"1"}}}`,
			"this token names no node")
	})

	t.Run("the labeller's token may change its own Node's edgefd labels", func(t *testing.T) {
		n, err := getNode(ctx, env.node)
		if err != nil {
			t.Fatal(err)
		}
		owned := n.Annotations["edgefd.io/owned-labels"]
		t.Cleanup(func() {
			// Whatever happened: the probe label and the annotation as they were.
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
				"labels":      map[string]any{vapProbeLabel: nil},
				"annotations": map[string]any{"edgefd.io/owned-labels": owned}}})
			_, _ = client.CoreV1().Nodes().Patch(context.Background(), env.node, types.MergePatchType, patch,
				metav1.PatchOptions{})
		})
		for _, labels := range []map[string]any{{vapProbeLabel: "1"}, {vapProbeLabel: nil}} {
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels,
				"annotations": map[string]any{"edgefd.io/owned-labels": owned}}})
			if _, err := own.CoreV1().Nodes().Patch(ctx, env.node, types.MergePatchType, patch,
				metav1.PatchOptions{}); err != nil {
				t.Errorf("patch %s of its own node as edgefd-labeller: %v", patch, err)
			}
		}
	})

	t.Run("an admin is not bound by the labeller's policy", func(t *testing.T) {
		patchNode(t, other.Name, `{"metadata":{"labels":{"team":"robotics"}}}`)
		patchNode(t, other.Name, `{"spec":{"unschedulable":true}}`)
	})

	t.Run("the labeller DaemonSet labels its Node under the policy", func(t *testing.T) {
		// A resync with nothing to do would not show a denial: remove an edgefd label, so the
		// pod must patch, and it must come back.
		want := realNodeDryRun(t)
		var key string
		for k := range want {
			if strings.HasPrefix(k, "edgefd.io/") {
				key = k
				break
			}
		}
		if key == "" {
			t.Fatalf("the dry run sets no edgefd.io/ label: %v", want)
		}
		patchNode(t, env.node, `{"metadata":{"labels":{"`+key+`":null}}}`)
		waitNodeLabels(t, env.node, want, 90*time.Second)
	})
}
