// Renders an Ollama prompt TEMPLATE for a one-turn chat the way Ollama's server does, so that tests can
// compare it byte for byte with the model's HF chat template.
//
// Stdin: {"template": "...", "system": "...", "prompt": "...", "response": "..."}; stdout: the prompt.
//
// Ollama (template/template.go, Template.Execute, for templates without .Messages) parses the TEMPLATE
// with missingkey=zero, then deletes the `{{ .Response }}` field's successors from the parse tree
// (deleteNode below, copied from Ollama) so that the prompt ends where the answer begins, and executes
// what is left with System, Prompt and Response. Ollama appends `{{ .Response }}` to templates that lack
// it; medgen's always carry it, so one without it is refused here rather than emulated.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/template"
	"text/template/parse"
)

type values struct {
	Template string `json:"template"`
	System   string `json:"system"`
	Prompt   string `json:"prompt"`
	Response string `json:"response"`
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// deleteNode walks the node list and deletes nodes that match the predicate
// this is currently to remove the {{ .Response }} node from templates
// (verbatim from ollama/ollama template/template.go)
func deleteNode(n parse.Node, fn func(parse.Node) bool) parse.Node {
	var walk func(n parse.Node) parse.Node
	walk = func(n parse.Node) parse.Node {
		if fn(n) {
			return nil
		}

		switch t := n.(type) {
		case *parse.ListNode:
			var nodes []parse.Node
			for _, c := range t.Nodes {
				if n := walk(c); n != nil {
					nodes = append(nodes, n)
				}
			}

			t.Nodes = nodes
			return t
		case *parse.IfNode:
			t.BranchNode = *walk(&t.BranchNode).(*parse.BranchNode)
		case *parse.WithNode:
			t.BranchNode = *walk(&t.BranchNode).(*parse.BranchNode)
		case *parse.RangeNode:
			t.BranchNode = *walk(&t.BranchNode).(*parse.BranchNode)
		case *parse.BranchNode:
			t.List = walk(t.List).(*parse.ListNode)
			if t.ElseList != nil {
				t.ElseList = walk(t.ElseList).(*parse.ListNode)
			}
		case *parse.ActionNode:
			n := walk(t.Pipe)
			if n == nil {
				return nil
			}

			t.Pipe = n.(*parse.PipeNode)
		case *parse.PipeNode:
			var commands []*parse.CommandNode
			for _, c := range t.Cmds {
				var args []parse.Node
				for _, a := range c.Args {
					if n := walk(a); n != nil {
						args = append(args, n)
					}
				}

				if len(args) == 0 {
					return nil
				}

				c.Args = args
				commands = append(commands, c)
			}

			if len(commands) == 0 {
				return nil
			}

			t.Cmds = commands
		}

		return n
	}

	return walk(n)
}

func run() error {
	var v values
	if err := json.NewDecoder(os.Stdin).Decode(&v); err != nil {
		return fmt.Errorf("expected a JSON object on stdin, got: %w", err)
	}
	tmpl, err := template.New("").Option("missingkey=zero").Parse(v.Template)
	if err != nil {
		return fmt.Errorf("expected a Go text/template, got: %w", err)
	}

	var cut bool
	nodes := deleteNode(tmpl.Root.Copy(), func(n parse.Node) bool {
		if field, ok := n.(*parse.FieldNode); ok && contains(field.Ident, "Response") {
			cut = true
			return false
		}

		return cut
	})
	if !cut {
		return fmt.Errorf("expected a template with {{ .Response }}, got %q", v.Template)
	}

	tree := parse.Tree{Root: nodes.(*parse.ListNode)}
	return template.Must(template.New("").AddParseTree("", &tree)).Execute(os.Stdout, map[string]any{
		"System":   v.System,
		"Prompt":   v.Prompt,
		"Response": v.Response,
	})
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ollama_template:", err)
		os.Exit(1)
	}
}
