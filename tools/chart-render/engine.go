// The chart: its metadata, its templates parsed into one set (named "<chart>/templates/<file>", so
// `include (print $.Template.BasePath "/x.yaml") .` works as in Helm), and rendering each manifest
// template with the built-in objects Helm provides.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/ghodss/yaml"
)

// chartMeta is Chart.yaml, exposed as .Chart with Helm's field names.
type chartMeta struct {
	APIVersion   string                   `json:"apiVersion"`
	Name         string                   `json:"name"`
	Version      string                   `json:"version"`
	KubeVersion  string                   `json:"kubeVersion,omitempty"`
	Description  string                   `json:"description,omitempty"`
	Type         string                   `json:"type,omitempty"`
	Keywords     []string                 `json:"keywords,omitempty"`
	Home         string                   `json:"home,omitempty"`
	Sources      []string                 `json:"sources,omitempty"`
	Icon         string                   `json:"icon,omitempty"`
	AppVersion   string                   `json:"appVersion,omitempty"`
	Deprecated   bool                     `json:"deprecated,omitempty"`
	Annotations  map[string]string        `json:"annotations,omitempty"`
	Maintainers  []map[string]interface{} `json:"maintainers,omitempty"`
	Dependencies []map[string]interface{} `json:"dependencies,omitempty"`
}

type engine struct {
	dir   string
	meta  chartMeta
	set   *template.Template
	names []string // manifest templates, in file-name order
	depth int
}

func loadChart(dir string) (*engine, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	e := &engine{dir: dir}
	if err := yaml.Unmarshal(raw, &e.meta); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	if e.meta.Name == "" {
		return nil, fmt.Errorf("Chart.yaml: name is required")
	}
	if len(e.meta.Dependencies) > 0 {
		return nil, fmt.Errorf("Chart.yaml: dependencies (subcharts) are not supported by this renderer")
	}
	// missingkey=zero + removing "<no value>" afterwards is how Helm treats absent values.
	e.set = template.New(e.meta.Name).Option("missingkey=zero").Funcs(funcMap(e))
	tdir := filepath.Join(dir, "templates")
	var files []string
	err = filepath.Walk(tdir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		name := e.meta.Name + "/" + filepath.ToSlash(rel)
		text, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if _, err := e.set.New(name).Parse(string(text)); err != nil {
			return nil, fmt.Errorf("parse error in %s: %w", name, err)
		}
		base := filepath.Base(p)
		// Partials only define; NOTES.txt is printed by helm install, never part of the manifests.
		if !strings.HasPrefix(base, "_") && base != "NOTES.txt" {
			e.names = append(e.names, name)
		}
	}
	return e, nil
}

// chartFiles is .Files: the chart's files outside templates/, read on demand. Get answers "" for a
// missing file (as Helm does) and for any name that would leave the chart or read a template.
type chartFiles struct{ dir string }

func (f chartFiles) Get(name string) string {
	clean := filepath.ToSlash(filepath.Clean(filepath.FromSlash(name)))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || strings.HasPrefix(clean, "templates/") {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(clean)))
	if err != nil {
		return ""
	}
	return string(b)
}

type rendered struct {
	source string
	text   string
}

// render executes every manifest template; top holds .Values, .Release, .Chart, .Files and .Capabilities,
// and each template also sees its own .Template.
func (e *engine) render(top map[string]interface{}) ([]rendered, error) {
	top["Chart"] = e.meta
	top["Files"] = chartFiles{dir: e.dir}
	var out []rendered
	for _, name := range e.names {
		data := make(map[string]interface{}, len(top)+1)
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = map[string]interface{}{"Name": name, "BasePath": e.meta.Name + "/templates"}
		var b strings.Builder
		if err := e.set.ExecuteTemplate(&b, name, data); err != nil {
			return nil, err
		}
		out = append(out, rendered{source: name, text: strings.ReplaceAll(b.String(), "<no value>", "")})
	}
	return out, nil
}
