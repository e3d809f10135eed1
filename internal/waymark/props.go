package waymark

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Attribute operations. A prop value that is an object with exactly one key
// starting with '$' is an operation on the stored value rather than a value
// (prop keys cannot start with '$', so nothing is ambiguous):
//
//	{"$set_once": v}  sets the prop unless it exists
//	{"$add": n}       adds n to the stored number (missing or not a number: 0)
//	{"$append": [..]} set union with the stored array (a stored scalar counts
//	                  as a one-element array)
//	{"$remove": [..]} set difference from the stored array
//
// They are applied by MergeProps, the one merge of user and group props.
const (
	OpSetOnce = "$set_once"
	OpAdd     = "$add"
	OpAppend  = "$append"
	OpRemove  = "$remove"
)

// operation returns the operation a prop value stands for, if it is one: an
// object with a key starting with '$'.
func operation(v any) (op string, operand any, ok bool) {
	obj, isObj := v.(map[string]any)
	if !isObj {
		return "", nil, false
	}
	for k, operand := range obj {
		if strings.HasPrefix(k, "$") {
			return k, operand, true
		}
	}
	return "", nil, false
}

// HasOperations reports whether a props object holds an attribute
// operation. An input with one is not idempotent ($add adds again), so it
// never takes identify's repeat shortcut.
func HasOperations(props map[string]any) bool {
	for _, v := range props {
		if _, _, ok := operation(v); ok {
			return true
		}
	}
	return false
}

// validOperation checks an operation object (validValue's counterpart for
// operations): exactly one key, a known operation, its operand's type.
func validOperation(field string, obj map[string]any) error {
	if len(obj) != 1 {
		return Invalid(field, "an operation is an object with exactly one key of %s, %s, %s, %s", OpSetOnce, OpAdd, OpAppend, OpRemove)
	}
	op, operand, _ := operation(obj)
	switch op {
	case OpSetOnce:
		if operand == nil {
			return Invalid(field, "%s takes a value, not null", op)
		}
		return validValue(field, operand, 1)
	case OpAdd:
		if _, ok := numberOf(operand); !ok {
			return Invalid(field, "%s takes a finite number", op)
		}
		return nil
	case OpAppend, OpRemove:
		if _, ok := operand.([]any); !ok {
			return Invalid(field, "%s takes an array of strings, numbers and booleans", op)
		}
		return validValue(field, operand, 1)
	default:
		return Invalid(field, "unknown operation %q: use %s, %s, %s or %s", op, OpSetOnce, OpAdd, OpAppend, OpRemove)
	}
}

// AllowList is a workspace's list of the prop keys it stores (data
// minimization); an empty list allows any key.
type AllowList []string

// Allows reports whether props under key are stored.
func (a AllowList) Allows(key string) bool {
	return len(a) == 0 || slices.Contains(a, key)
}

// ValidateAllowList checks an allow-list as an operator sets it: prop keys,
// each once, at most MaxProps; it returns the list sorted.
func ValidateAllowList(field string, keys []string) (AllowList, error) {
	if len(keys) > MaxProps {
		return nil, Invalid(field, "more than %d keys", MaxProps)
	}
	out := slices.Clone(keys)
	sort.Strings(out)
	for i, k := range out {
		if err := validPropKey(field, k); err != nil {
			return nil, err
		}
		if i > 0 && out[i-1] == k {
			return nil, Invalid(field, "%q is listed twice", k)
		}
	}
	return out, nil
}

// IgnoredProps lists, sorted, the keys of an input's props that the
// allow-list keeps out (nil when none).
func IgnoredProps(in map[string]any, allowed AllowList) []string {
	var ignored []string
	for k := range in {
		if !allowed.Allows(k) {
			ignored = append(ignored, k)
		}
	}
	sort.Strings(ignored)
	return ignored
}

// MergeProps is the one merge of props, for users and groups: it applies
// an input's props (validated by ValidateProps) to the stored ones key by
// key. A value replaces, null deletes, an operation applies to the stored
// value. Keys the allow-list keeps out are neither applied nor kept: input
// keys outside it are left out, and stored ones (from before the list was
// set) are dropped, so every write brings the stored props within the list.
// field names the props in errors ("user.props"). It refuses a result of
// more than MaxProps props or an array grown past MaxArrayItems. The result
// is nil when no prop remains.
func MergeProps(field string, stored, in map[string]any, allowed AllowList) (map[string]any, error) {
	merged := make(map[string]any, len(stored)+len(in))
	for k, v := range stored {
		if allowed.Allows(k) {
			merged[k] = v
		}
	}
	for _, k := range sortedKeys(in) {
		if !allowed.Allows(k) {
			continue
		}
		v := in[k]
		if v == nil {
			delete(merged, k)
			continue
		}
		op, operand, isOp := operation(v)
		if !isOp {
			merged[k] = v
			continue
		}
		current, exists := merged[k]
		switch op {
		case OpSetOnce:
			if !exists {
				merged[k] = operand
			}
		case OpAdd:
			sum, err := addNumbers(field+"."+k, current, operand)
			if err != nil {
				return nil, err
			}
			merged[k] = sum
		case OpAppend:
			items := union(asItems(current), operand.([]any))
			if len(items) > MaxArrayItems {
				return nil, Invalid(field+"."+k, "more than %d items once appended to the stored ones", MaxArrayItems)
			}
			merged[k] = items
		case OpRemove:
			if exists {
				merged[k] = difference(asItems(current), operand.([]any))
			}
		}
	}
	if len(merged) > MaxProps {
		return nil, Invalid(field, "more than %d props once merged with the stored ones", MaxProps)
	}
	if len(merged) == 0 {
		return nil, nil
	}
	return merged, nil
}

// numberOf reads a JSON number (json.Number as the API decodes it, float64
// from encoding/json's default decoding) as a finite float.
func numberOf(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(x), 64); err != nil {
			return 0, false
		}
	case float64:
		f = x
	default:
		return 0, false
	}
	return f, !math.IsInf(f, 0) && !math.IsNaN(f)
}

// addNumbers adds operand to current (missing or not a number counts as 0).
// Integers add exactly as int64 while they fit; otherwise as floats.
func addNumbers(field string, current, operand any) (json.Number, error) {
	if _, ok := numberOf(current); !ok {
		current = json.Number("0")
	}
	a, aInt := integerOf(current)
	b, bInt := integerOf(operand)
	if aInt && bInt {
		if sum := a + b; (sum > a) == (b > 0) || b == 0 {
			return json.Number(strconv.FormatInt(sum, 10)), nil
		}
	}
	x, _ := numberOf(current)
	y, _ := numberOf(operand)
	sum := x + y
	if math.IsInf(sum, 0) {
		return "", Invalid(field, "the sum is out of range")
	}
	return json.Number(strconv.FormatFloat(sum, 'g', -1, 64)), nil
}

// integerOf reads a number written as an integer that fits an int64.
func integerOf(v any) (int64, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, false
		}
		return int64(x), true
	default:
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// asItems is the stored value an $append or $remove works on: an array as
// it is, a scalar as a one-element array, anything else (missing, an
// object) as empty.
func asItems(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case string, bool, json.Number, float64:
		return []any{x}
	}
	return nil
}

// scalarKey makes scalars comparable as JSON values: a number equals
// another however it is written (1, 1.0).
func scalarKey(v any) string {
	switch x := v.(type) {
	case string:
		return "s" + x
	case bool:
		return "b" + strconv.FormatBool(x)
	}
	f, _ := numberOf(v)
	return "n" + strconv.FormatFloat(f, 'g', -1, 64)
}

// union appends to have the items of add it does not hold yet, in order.
func union(have, add []any) []any {
	seen := make(map[string]bool, len(have)+len(add))
	out := make([]any, 0, len(have)+len(add))
	for _, v := range have {
		seen[scalarKey(v)] = true
		out = append(out, v)
	}
	for _, v := range add {
		if k := scalarKey(v); !seen[k] {
			seen[k] = true
			out = append(out, v)
		}
	}
	return out
}

// difference is have without the items of remove.
func difference(have, remove []any) []any {
	gone := make(map[string]bool, len(remove))
	for _, v := range remove {
		gone[scalarKey(v)] = true
	}
	out := make([]any, 0, len(have))
	for _, v := range have {
		if !gone[scalarKey(v)] {
			out = append(out, v)
		}
	}
	return out
}
