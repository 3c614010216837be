package kubernetes

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// bundle is every object of the directory, decoded into its API type.
type bundle struct {
	deployment     *appsv1.Deployment
	service        *corev1.Service
	hpa            *autoscalingv2.HorizontalPodAutoscaler
	pdb            *policyv1.PodDisruptionBudget
	configMap      *corev1.ConfigMap
	serviceAccount *corev1.ServiceAccount
}

// kustomization is the subset of kustomize's schema this directory uses;
// unknown keys fail like they do for the API types.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
	} `json:"labels,omitempty"`
}

// splitDocs splits a YAML stream on document separators.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(d []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(d, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// decodeObject decodes one document strictly into the API type its kind
// names. Unknown fields, duplicate keys and unknown kinds are errors.
func decodeObject(doc []byte, b *bundle) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var target any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		b.deployment = &appsv1.Deployment{}
		target = b.deployment
	case "v1 Service":
		b.service = &corev1.Service{}
		target = b.service
	case "autoscaling/v2 HorizontalPodAutoscaler":
		b.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
		target = b.hpa
	case "policy/v1 PodDisruptionBudget":
		b.pdb = &policyv1.PodDisruptionBudget{}
		target = b.pdb
	case "v1 ConfigMap":
		b.configMap = &corev1.ConfigMap{}
		target = b.configMap
	case "v1 ServiceAccount":
		b.serviceAccount = &corev1.ServiceAccount{}
		target = b.serviceAccount
	default:
		return fmt.Errorf("unexpected object %q %q", tm.APIVersion, tm.Kind)
	}
	return yaml.UnmarshalStrict(doc, target)
}

func loadDir(t *testing.T, dir string) (*bundle, *kustomization) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	b := &bundle{}
	var k *kustomization
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == "kustomization.yaml" {
			k = &kustomization{}
			if err := yaml.UnmarshalStrict(data, k); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			continue
		}
		for i, doc := range splitDocs(data) {
			if err := decodeObject(doc, b); err != nil {
				t.Fatalf("%s document %d: %v", f, i+1, err)
			}
		}
	}
	return b, k
}

func TestManifestsDecodeAndAreComplete(t *testing.T) {
	b, k := loadDir(t, ".")
	for name, missing := range map[string]bool{
		"Deployment": b.deployment == nil, "Service": b.service == nil,
		"HorizontalPodAutoscaler": b.hpa == nil, "PodDisruptionBudget": b.pdb == nil,
		"ConfigMap": b.configMap == nil, "ServiceAccount": b.serviceAccount == nil,
	} {
		if missing {
			t.Errorf("no %s in deploy/kubernetes", name)
		}
	}
	if k == nil {
		t.Fatal("no kustomization.yaml")
	}
	files, _ := filepath.Glob("*.yaml")
	var want []string
	for _, f := range files {
		if f != "kustomization.yaml" {
			want = append(want, f)
		}
	}
	got := slices.Clone(k.Resources)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources = %v, want every manifest %v", got, want)
	}
	for _, l := range k.Labels {
		if l.IncludeSelectors {
			t.Error("kustomization labels must not change selectors (immutable on a Deployment)")
		}
	}
}

// TestStrictDecodingRejectsUnknownFields proves the decoder would catch a
// misspelt field rather than silently dropping it.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	tests := []struct {
		name, doc string
		ok        bool
	}{
		{"valid", "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec: {maxUnavailable: 1}\n", true},
		{"misspelt field", "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec: {maxUnavailabel: 1}\n", false},
		{"wrong type", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: eighty}]}\n", false},
		{"unknown kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeObject([]byte(tt.doc), &bundle{})
			if (err == nil) != tt.ok {
				t.Fatalf("decode error = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestWiring(t *testing.T) {
	b, _ := loadDir(t, ".")
	d := b.deployment
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	podLabels := labels.Set(d.Spec.Template.Labels)

	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("deployment selector %v does not match its pod labels %v (%v)", d.Spec.Selector, podLabels, err)
	}
	if d.Spec.Replicas != nil {
		t.Error("deployment sets replicas; the HPA owns the count")
	}

	t.Run("service", func(t *testing.T) {
		if len(b.service.Spec.Selector) == 0 || !labels.SelectorFromSet(b.service.Spec.Selector).Matches(podLabels) {
			t.Errorf("service selector %v does not select the pods %v", b.service.Spec.Selector, podLabels)
		}
		for _, p := range b.service.Spec.Ports {
			if _, err := containerPort(c, p.TargetPort); err != nil {
				t.Errorf("service port %s: %v", p.Name, err)
			}
		}
	})

	t.Run("pdb and hpa target the deployment", func(t *testing.T) {
		ps, err := metav1.LabelSelectorAsSelector(b.pdb.Spec.Selector)
		if err != nil || ps.Empty() || !ps.Matches(podLabels) {
			t.Errorf("pdb selector %v does not select the pods (%v)", b.pdb.Spec.Selector, err)
		}
		ref := b.hpa.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
			t.Errorf("hpa targets %+v, want the Deployment %q", ref, d.Name)
		}
		if b.hpa.Spec.MinReplicas == nil || *b.hpa.Spec.MinReplicas < 2 {
			t.Error("hpa minReplicas must be ≥ 2 so the PDB can evict one replica without an outage")
		}
		if b.pdb.Spec.MaxUnavailable == nil || b.pdb.Spec.MaxUnavailable.IntValue() < 1 {
			t.Error("pdb must allow one voluntary eviction, or node drains block forever")
		}
		for _, m := range b.hpa.Spec.Metrics {
			if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU {
				if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
					t.Error("hpa scales on CPU utilisation but the container requests no CPU")
				}
			}
		}
	})

	t.Run("probes", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{
			{"liveness", c.LivenessProbe, "/health"},
			{"readiness", c.ReadinessProbe, "/ready"},
			{"startup", c.StartupProbe, "/health"},
		} {
			if tt.probe == nil || tt.probe.HTTPGet == nil {
				t.Errorf("%s probe: want an httpGet probe", tt.name)
				continue
			}
			if tt.probe.HTTPGet.Path != tt.path {
				t.Errorf("%s probe path = %q, want %q", tt.name, tt.probe.HTTPGet.Path, tt.path)
			}
			if _, err := containerPort(c, tt.probe.HTTPGet.Port); err != nil {
				t.Errorf("%s probe: %v", tt.name, err)
			}
		}
	})

	env := effectiveEnv(t, c, b.configMap)

	t.Run("listen address matches the container port", func(t *testing.T) {
		_, port, err := net.SplitHostPort(env["AGENTRT_ADDR"])
		if err != nil {
			t.Fatalf("AGENTRT_ADDR %q: %v", env["AGENTRT_ADDR"], err)
		}
		n, _ := strconv.Atoi(port)
		if _, err := containerPort(c, intstr.FromInt32(int32(n))); err != nil {
			t.Errorf("AGENTRT_ADDR port %s: %v", port, err)
		}
	})

	t.Run("projected token for workload-identity federation", func(t *testing.T) {
		file := env["DATABRICKS_OIDC_TOKEN_FILEPATH"]
		if file == "" {
			t.Fatal("DATABRICKS_OIDC_TOKEN_FILEPATH is not set")
		}
		var found bool
		for _, m := range c.VolumeMounts {
			vol := volume(pod, m.Name)
			if vol == nil || vol.Projected == nil {
				continue
			}
			for _, src := range vol.Projected.Sources {
				sat := src.ServiceAccountToken
				if sat == nil || path.Join(m.MountPath, sat.Path) != file {
					continue
				}
				found = true
				if !m.ReadOnly {
					t.Error("token volume must be mounted read-only")
				}
				if sat.Audience == "" {
					t.Error("projected token needs an audience the federation policy trusts")
				}
				if sat.ExpirationSeconds == nil || *sat.ExpirationSeconds < 600 {
					t.Error("projected token expirationSeconds must be ≥ 600 (the API server's minimum)")
				}
			}
		}
		if !found {
			t.Errorf("no projected serviceAccountToken is mounted at %s", file)
		}
		if pod.ServiceAccountName != b.serviceAccount.Name {
			t.Errorf("pod runs as service account %q, manifest defines %q", pod.ServiceAccountName, b.serviceAccount.Name)
		}
	})

	t.Run("non-root and read-only", func(t *testing.T) {
		sc, psc := c.SecurityContext, pod.SecurityContext
		switch {
		case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
			t.Error("pod must set runAsNonRoot")
		case psc.RunAsUser == nil || *psc.RunAsUser == 0:
			t.Error("pod must run as a non-zero uid")
		case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Error("container must have a read-only root filesystem")
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Error("container must disallow privilege escalation")
		case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
			t.Error("container must drop all capabilities")
		}
		if psc != nil && psc.RunAsUser != nil {
			df, err := os.ReadFile("../../Dockerfile")
			if err != nil {
				t.Fatalf("Dockerfile: %v", err)
			}
			if uid := fmt.Sprint(*psc.RunAsUser); !bytes.Contains(df, []byte("USER "+uid)) {
				t.Errorf("the image's USER should be %s, as the pod's runAsUser", uid)
			}
		}
	})

	t.Run("grace period covers the drain", func(t *testing.T) {
		drain, err := time.ParseDuration(env["AGENTRT_DRAIN_TIMEOUT"])
		if err != nil {
			t.Fatalf("AGENTRT_DRAIN_TIMEOUT: %v", err)
		}
		var pause time.Duration
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
			pause = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
		if pod.TerminationGracePeriodSeconds == nil {
			t.Fatal("terminationGracePeriodSeconds is not set")
		}
		grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
		if grace <= pause+drain {
			t.Errorf("terminationGracePeriodSeconds %v must exceed preStop %v + drain timeout %v", grace, pause, drain)
		}
	})

	t.Run("rolling update keeps capacity", func(t *testing.T) {
		ru := d.Spec.Strategy.RollingUpdate
		if ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
			t.Error("rolling update should keep maxUnavailable 0: new replicas become ready first")
		}
	})
}

// effectiveEnv is the container's environment as the kubelet builds it from
// envFrom ConfigMaps and literal env values.
func effectiveEnv(t *testing.T, c corev1.Container, cm *corev1.ConfigMap) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, src := range c.EnvFrom {
		if src.ConfigMapRef == nil {
			continue
		}
		if src.ConfigMapRef.Name != cm.Name {
			t.Fatalf("envFrom names ConfigMap %q, manifest defines %q", src.ConfigMapRef.Name, cm.Name)
		}
		for k, v := range cm.Data {
			env[src.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	return env
}

func containerPort(c corev1.Container, p intstr.IntOrString) (int32, error) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("port %s is not a port of container %q", p.String(), c.Name)
}

func volume(pod corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

// TestConfigNamesAreServeSettings checks that every AGENTRT_* variable the
// ConfigMap sets is one serve reads, so a renamed setting cannot leave the
// manifests silently configuring nothing.
func TestConfigNamesAreServeSettings(t *testing.T) {
	b, _ := loadDir(t, ".")
	src := serveSources(t)
	for k := range b.configMap.Data {
		if !strings.HasPrefix(k, "AGENTRT_") {
			continue
		}
		// serve either spells the variable out or derives it from the flag
		// name (AGENTRT_DRAIN_TIMEOUT from --drain-timeout).
		flag := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "AGENTRT_")), "_", "-")
		if !strings.Contains(src, `"`+k+`"`) && !strings.Contains(src, `"`+flag+`"`) {
			t.Errorf("ConfigMap sets %s, which serve does not read", k)
		}
	}
}

// serveSources concatenates the Go sources that define serve's settings.
func serveSources(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, dir := range []string{"../../cmd/serve", "../../runtime/cli"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(data)
		}
	}
	if b.Len() == 0 {
		t.Fatal("no serve sources found under cmd/serve or runtime/cli")
	}
	return b.String()
}
