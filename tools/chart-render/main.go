// chart-render: renders a Helm chart like `helm template`, for machines where helm cannot be
// installed. Go's text/template with sprig, as Helm's engine is; see README.md for what it covers.
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// capabilities is .Capabilities: no cluster to ask, so a fixed Kubernetes version (--kube-version)
// and the API versions of a stock cluster of that age.
type kubeVersion struct {
	Version, Major, Minor string
}

func (k kubeVersion) String() string     { return k.Version }
func (k kubeVersion) GitVersion() string { return k.Version }

type versionSet []string

func (s versionSet) Has(v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

type capabilities struct {
	KubeVersion kubeVersion
	APIVersions versionSet
}

var stockAPIs = versionSet{"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v1", "autoscaling/v2",
	"networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1", "apiextensions.k8s.io/v1",
	"admissionregistration.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1", "events.k8s.io/v1",
	"scheduling.k8s.io/v1", "node.k8s.io/v1", "certificates.k8s.io/v1"}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

func main() {
	var files, sets multi
	flag.Var(&files, "f", "values file, merged over the chart's values.yaml in order (repeatable)")
	flag.Var(&sets, "set", "key.path=value[,key=value] applied after the files (repeatable)")
	name := flag.String("name", "release-name", "release name (.Release.Name)")
	namespace := flag.String("namespace", "default", "release namespace (.Release.Namespace)")
	kube := flag.String("kube-version", "v1.31.0", "Kubernetes version reported in .Capabilities")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: chart-render [-f values.yaml]... [--set k=v]... [--name R] [--namespace N] CHART_DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), files, sets, *name, *namespace, *kube); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func run(dir string, files, sets []string, name, namespace, kube string) error {
	e, err := loadChart(dir)
	if err != nil {
		return err
	}
	kv, err := semver.NewVersion(kube)
	if err != nil {
		return fmt.Errorf("--kube-version %q: %w", kube, err)
	}
	if e.meta.KubeVersion != "" {
		c, err := semver.NewConstraint(e.meta.KubeVersion)
		if err != nil {
			return fmt.Errorf("Chart.yaml kubeVersion %q: %w", e.meta.KubeVersion, err)
		}
		if !c.Check(kv) {
			return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes v%s", e.meta.KubeVersion, kv)
		}
	}
	vals, err := readValuesFile(dir + "/values.yaml")
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if vals == nil {
		vals = values{}
	}
	for _, f := range files {
		over, err := readValuesFile(f)
		if err != nil {
			return err
		}
		vals = merge(vals, over)
	}
	for _, s := range sets {
		if err := applySet(vals, s); err != nil {
			return err
		}
	}
	top := map[string]interface{}{
		"Values": vals,
		"Release": map[string]interface{}{
			"Name": name, "Namespace": namespace, "Service": "Helm", "Revision": 1, "IsInstall": true, "IsUpgrade": false,
		},
		"Capabilities": capabilities{
			KubeVersion: kubeVersion{Version: "v" + kv.String(), Major: fmt.Sprint(kv.Major()), Minor: fmt.Sprint(kv.Minor())},
			APIVersions: stockAPIs,
		},
	}
	out, err := e.render(top)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, r := range out {
		for _, doc := range docSeparator.Split(r.text, -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", r.source, strings.Trim(doc, "\n"))
		}
	}
	_, err = os.Stdout.WriteString(b.String())
	return err
}
