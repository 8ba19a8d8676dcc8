// Values for a render: the chart's values.yaml, then every -f file deep-merged in order, then every
// --set assignment. YAML is read the way Helm reads it (YAML -> JSON -> Go values, so numbers are
// float64 and maps are map[string]interface{}), which keeps toYaml/toJson output identical to Helm's.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ghodss/yaml"
)

type values = map[string]interface{}

func readValuesFile(path string) (values, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v := values{}
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("cannot parse %s: %w", path, err)
	}
	return v, nil
}

// merge lays over on top of base: maps merge key by key, a null in over deletes the key, anything
// else replaces. base is modified and returned.
func merge(base, over values) values {
	for k, ov := range over {
		if ov == nil {
			delete(base, k)
			continue
		}
		om, oIsMap := ov.(map[string]interface{})
		bm, bIsMap := base[k].(map[string]interface{})
		if oIsMap && bIsMap {
			base[k] = merge(bm, om)
		} else if oIsMap {
			base[k] = merge(values{}, om) // drops nulls inside a new map too
		} else {
			base[k] = ov
		}
	}
	return base
}

// applySet applies one --set argument: comma-separated key.path=value pairs; `\,` and `\.` escape.
// Scalars are typed as Helm's --set types them (true/false, null, integers); lists are not supported.
func applySet(vals values, arg string) error {
	for _, pair := range splitEscaped(arg, ',') {
		eq := strings.IndexByte(pair, '=')
		if eq < 0 {
			return fmt.Errorf("--set %q: expected key=value", pair)
		}
		keys := splitEscaped(pair[:eq], '.')
		if strings.ContainsAny(pair[:eq], "[]") {
			return fmt.Errorf("--set %q: list indexes are not supported by this renderer", pair)
		}
		node := vals
		for _, k := range keys[:len(keys)-1] {
			next, ok := node[k].(map[string]interface{})
			if !ok {
				next = values{}
				node[k] = next
			}
			node = next
		}
		last := keys[len(keys)-1]
		v := typedScalar(pair[eq+1:])
		if v == nil {
			delete(node, last)
		} else {
			node[last] = v
		}
	}
	return nil
}

func typedScalar(s string) interface{} {
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && (s == "0" || !strings.HasPrefix(s, "0")) {
		return n
	}
	return s
}

func splitEscaped(s string, sep byte) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == sep || s[i+1] == '\\') {
			cur.WriteByte(s[i+1])
			i++
			continue
		}
		if s[i] == sep {
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	return append(parts, cur.String())
}
