package iampolicy

// Authorize decides a request of a principal of the account that owns the
// resource, as AWS does within one account: an explicit Deny in any policy
// wins; otherwise an Allow in an identity policy or in the resource policy
// allows.
//
// KMS keys are the exception (keyPolicy true): the key policy must allow
// the request itself, either naming the principal or naming the account,
// and in the latter case IAM decides, so an identity policy must allow it
// too. ("Key policies are the primary way to control access to KMS keys";
// see "Determining access to a KMS key" in the KMS documentation.)
func Authorize(r Request, identity []Policy, resource *Policy, keyPolicy bool) (Decision, error) {
	fromIdentity := ImplicitDeny
	for _, p := range identity {
		d, err := p.Evaluate(r)
		if err != nil {
			return ExplicitDeny, err
		}
		if d == ExplicitDeny {
			return ExplicitDeny, nil
		}
		if d == Allow {
			fromIdentity = Allow
		}
	}
	fromResource := ImplicitDeny
	if resource != nil {
		d, err := resource.Evaluate(r)
		if err != nil || d == ExplicitDeny {
			return ExplicitDeny, err
		}
		fromResource = d
	}
	if !keyPolicy {
		if fromIdentity == Allow || fromResource == Allow {
			return Allow, nil
		}
		return ImplicitDeny, nil
	}
	if resource == nil || fromResource != Allow {
		return ImplicitDeny, nil
	}
	if namesPrincipal(*resource, r) || fromIdentity == Allow {
		return Allow, nil
	}
	return ImplicitDeny, nil
}

// namesPrincipal says an Allow statement of the key policy that applies to
// the request names the principal itself rather than its account, so that
// no IAM permission is needed.
func namesPrincipal(p Policy, r Request) bool {
	for _, st := range p.Statements {
		if st.Effect != "Allow" || st.Principals == nil {
			continue
		}
		if ok, err := st.applies(r); err != nil || !ok {
			continue
		}
		for kind, vals := range st.Principals {
			for _, v := range vals {
				if v == "*" || v == r.Principal && (kind == "Service" || !isAccount(v)) {
					return true
				}
			}
		}
	}
	return false
}
