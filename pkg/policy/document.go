package policy

import "go.yaml.in/yaml/v4"

// The document model: the policy file as written, before any rule is
// applied. decode fills it strictly (unknown fields, duplicate keys and
// wrong shapes are problems); validate reads it. Every value keeps its YAML
// node, so a problem names file:line:col and a path.
//
// To add a policy field: add one struct field below, tagged with its name
// in the file, and one rule in validate*.go that reads it. decode needs no
// change: it learns the known field names from the tags.

// docValue is one value of the file with its place. The zero Node means the
// field is absent; the place is filled either way, so "required field is
// missing" can name it.
type docValue struct {
	Node *yaml.Node // the value as parsed
	Key  *yaml.Node // its mapping key; nil for a list item or the root
	// parent, name, index and item are the value's place, which Path
	// spells: the value that holds it (nil for the root) and its name there
	// (a field name or mapping key) or, for a list item, its index.
	parent *docValue
	name   string
	index  int32
	item   bool
	// bad is set when decode reported the value's shape (not a mapping or
	// a list where one is needed): validate then reports nothing more on
	// it.
	bad bool
	// keysBad is set on a mapping with an unknown field, a duplicate key or
	// a key that is not a string.
	keysBad bool
}

// place is where decode puts a value: see docValue.
type place struct {
	parent *docValue
	name   string
	index  int32
	item   bool
}

func (v *docValue) setPlace(p place) {
	v.parent, v.name, v.index, v.item = p.parent, p.name, p.index, p.item
}

// fieldOf is the place of the field or mapping key name of v.
func fieldOf(v *docValue, name string) place { return place{parent: v, name: name} }

// itemOf is the place of item i of the list v.
func itemOf(v *docValue, i int) place { return place{parent: v, index: int32(i), item: true} }

// Path locates the value in the document, e.g. routes[2].authorizer. It is
// spelled when a problem is reported, not kept: a policy of 50,000 routes
// has close to a million values and seldom a problem.
func (v docValue) Path() string {
	switch {
	case v.parent == nil:
		return ""
	case v.item:
		return indexPath(v.parent.Path(), int(v.index))
	}
	return keyPath(v.parent.Path(), v.name)
}

// self returns v; promoted to every type that embeds docValue, it lets
// decode reach the embedded docValue of any document value.
func (v *docValue) self() *docValue { return v }

// Set reports whether the field is present in the file.
func (v docValue) Set() bool { return v.Node != nil }

// usable reports whether the value is present, decoded to its expected
// shape, and not an alias (aliases are reported once, by decode).
func (v docValue) usable() bool {
	return v.Node != nil && !v.bad && v.Node.Kind != yaml.AliasNode
}

// docList is a YAML sequence of T.
type docList[T any] struct {
	docValue
	Items []T
}

// docMap is a YAML mapping with names chosen by the author (authorizer names,
// claim names, header names), in file order.
type docMap[T any] struct {
	docValue
	Entries []docEntry[T]
}

// docEntry is one name of a docMap and its value.
type docEntry[T any] struct {
	Name string
	Key  *yaml.Node
	Val  T
}

// document is the whole policy file.
type document struct {
	docValue
	APIVersion       docValue                   `policy:"apiVersion"`
	Authorizers      docMap[authorizerDoc]      `policy:"authorizers"`
	Routes           docList[routeDoc]          `policy:"routes"`
	DefaultAction    docValue                   `policy:"defaultAction"`
	GatewayResponses docMap[gatewayResponseDoc] `policy:"gatewayResponses"`
	Revocation       revocationDoc              `policy:"revocation"`
}

type revocationDoc struct {
	docValue
	File       docValue `policy:"file"`
	Redis      redisDoc `policy:"redis"`
	StaleAfter docValue `policy:"staleAfter"`
}

type redisDoc struct {
	docValue
	URL    docValue `policy:"url"`
	Key    docValue `policy:"key"`
	CAFile docValue `policy:"caFile"`
}

type authorizerDoc struct {
	docValue
	UserPools      docList[poolDoc]  `policy:"userPools"`
	AppClientIDs   docList[docValue] `policy:"appClientIds"`
	IdentitySource docValue          `policy:"identitySource"`
	StripToken     docValue          `policy:"stripToken"`
	ResultTTL      docValue          `policy:"resultTtl"`
	ClockSkew      docValue          `policy:"clockSkew"`
	Algorithms     docList[docValue] `policy:"algorithms"`
}

type poolDoc struct {
	docValue
	ARN        docValue `policy:"arn"`
	UserPoolID docValue `policy:"userPoolId"`
	Issuer     docValue `policy:"issuer"`
	JWKSURI    docValue `policy:"jwksUri"`
	JWKSFile   docValue `policy:"jwksFile"`
}

type routeDoc struct {
	docValue
	Name          docValue          `policy:"name"`
	Match         matchDoc          `policy:"match"`
	Authorization docValue          `policy:"authorization"`
	Authorizer    docValue          `policy:"authorizer"`
	Mode          docValue          `policy:"mode"`
	Scopes        docList[docValue] `policy:"scopes"`
	Groups        docList[docValue] `policy:"groups"`
	Claims        docMap[docValue]  `policy:"claims"`
	ClaimHeaders  docMap[docValue]  `policy:"claimHeaders"`
	DryRun        docValue          `policy:"dryRun"`
}

type matchDoc struct {
	docValue
	Template docValue          `policy:"path"`
	Methods  docList[docValue] `policy:"methods"`
	Host     docValue          `policy:"host"`
}

type gatewayResponseDoc struct {
	docValue
	StatusCode docValue         `policy:"statusCode"`
	Headers    docMap[docValue] `policy:"headers"`
}
