package iampolicy

import (
	"fmt"
	"strings"
)

// evalCondition evaluates one condition key of one operator block. values
// are the policy's values (any of them may match); ctx is the request's
// context.
//
// The rules, from IAM's documentation ("Condition element", "Multivalued
// context keys"):
//   - a key absent from the request fails the condition, except with an
//     ...IfExists operator, a negated operator (StringNotEquals, ...), Null,
//     and ForAllValues (which holds for no values at all);
//   - without a set qualifier, the condition holds if a request value
//     matches one of the policy values (negated: if none does);
//   - ForAllValues: every request value matches one of the policy values;
//     ForAnyValue: at least one does.
func evalCondition(operator, key string, values []string, ctx map[string][]string) (bool, error) {
	op := operator
	qualifier := ""
	if i := strings.Index(op, ":"); i >= 0 {
		qualifier, op = op[:i], op[i+1:]
		if qualifier != "ForAllValues" && qualifier != "ForAnyValue" {
			return false, fmt.Errorf("unknown set operator %q", qualifier)
		}
	}
	ifExists := strings.HasSuffix(op, "IfExists")
	op = strings.TrimSuffix(op, "IfExists")
	got, present := lookup(ctx, key)

	if op == "Null" {
		if qualifier != "" || ifExists || len(values) != 1 {
			return false, fmt.Errorf("malformed Null condition on %s", key)
		}
		want := strings.EqualFold(values[0], "true")
		return !present == want, nil
	}
	match, negated, err := comparator(op)
	if err != nil {
		return false, err
	}
	// one is a single request value against the policy's values.
	one := func(v string) bool {
		for _, pv := range values {
			if match(pv, v) {
				return !negated
			}
		}
		return negated
	}
	switch qualifier {
	case "ForAllValues":
		for _, v := range got {
			if !one(v) {
				return false, nil
			}
		}
		return true, nil
	case "ForAnyValue":
		for _, v := range got {
			if one(v) {
				return true, nil
			}
		}
		return false, nil
	}
	if !present {
		return ifExists || negated, nil
	}
	if negated {
		for _, v := range got {
			if !one(v) {
				return false, nil
			}
		}
		return true, nil
	}
	for _, v := range got {
		if one(v) {
			return true, nil
		}
	}
	return false, nil
}

// lookup finds a context key regardless of case.
func lookup(ctx map[string][]string, key string) ([]string, bool) {
	for k, v := range ctx {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// comparator returns how a policy value matches a request value, and
// whether the operator is the negation of that match.
func comparator(op string) (match func(policy, request string) bool, negated bool, err error) {
	switch op {
	case "StringEquals":
		return func(p, r string) bool { return p == r }, false, nil
	case "StringNotEquals":
		return func(p, r string) bool { return p == r }, true, nil
	case "StringEqualsIgnoreCase":
		return strings.EqualFold, false, nil
	case "StringNotEqualsIgnoreCase":
		return strings.EqualFold, true, nil
	case "StringLike":
		return wildcard, false, nil
	case "StringNotLike":
		return wildcard, true, nil
	case "ArnEquals", "ArnLike":
		return arnLike, false, nil
	case "ArnNotEquals", "ArnNotLike":
		return arnLike, true, nil
	case "Bool":
		return strings.EqualFold, false, nil
	}
	return nil, false, fmt.Errorf("unsupported condition operator %q", op)
}

// arnLike compares the six colon-separated parts of two ARNs one by one,
// each with wildcards; the last part (the resource) may hold colons itself.
// ArnEquals and ArnLike behave the same way in IAM.
func arnLike(pattern, arn string) bool {
	p, a := strings.SplitN(pattern, ":", 6), strings.SplitN(arn, ":", 6)
	if len(p) != 6 || len(a) != 6 {
		return false
	}
	for i := range p {
		if !wildcard(p[i], a[i]) {
			return false
		}
	}
	return true
}
