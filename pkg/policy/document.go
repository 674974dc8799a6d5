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

// Value is one value of the file with its place. The zero Node means the
// field is absent; Path is filled either way, so "required field is
// missing" can name it.
type Value struct {
	Node *yaml.Node // the value as parsed
	Key  *yaml.Node // its mapping key; nil for a list item or the root
	Path string     // e.g. routes[2].authorizer
	// bad is set when decode reported the value's shape (not a mapping or
	// a list where one is needed): validate then reports nothing more on
	// it.
	bad bool
	// keysBad is set on a mapping with an unknown field, a duplicate key or
	// a key that is not a string.
	keysBad bool
}

// Set reports whether the field is present in the file.
func (v Value) Set() bool { return v.Node != nil }

// usable reports whether the value is present, decoded to its expected
// shape, and not an alias (aliases are reported once, by decode).
func (v Value) usable() bool {
	return v.Node != nil && !v.bad && v.Node.Kind != yaml.AliasNode
}

// List is a YAML sequence of T.
type List[T any] struct {
	Value
	Items []T
}

// Map is a YAML mapping with names chosen by the author (authorizer names,
// claim names, header names), in file order.
type Map[T any] struct {
	Value
	Entries []Entry[T]
}

// Entry is one name of a Map and its value.
type Entry[T any] struct {
	Name string
	Key  *yaml.Node
	Val  T
}

// document is the whole policy file.
type document struct {
	Value
	APIVersion       Value                   `policy:"apiVersion"`
	Authorizers      Map[authorizerDoc]      `policy:"authorizers"`
	Routes           List[routeDoc]          `policy:"routes"`
	DefaultAction    Value                   `policy:"defaultAction"`
	GatewayResponses Map[gatewayResponseDoc] `policy:"gatewayResponses"`
}

type authorizerDoc struct {
	Value
	UserPools      List[poolDoc] `policy:"userPools"`
	AppClientIDs   List[Value]   `policy:"appClientIds"`
	IdentitySource Value         `policy:"identitySource"`
	StripToken     Value         `policy:"stripToken"`
	ResultTTL      Value         `policy:"resultTtl"`
	ClockSkew      Value         `policy:"clockSkew"`
	Algorithms     List[Value]   `policy:"algorithms"`
}

type poolDoc struct {
	Value
	ARN        Value `policy:"arn"`
	UserPoolID Value `policy:"userPoolId"`
	Issuer     Value `policy:"issuer"`
	JWKSURI    Value `policy:"jwksUri"`
	JWKSFile   Value `policy:"jwksFile"`
}

type routeDoc struct {
	Value
	Name          Value       `policy:"name"`
	Match         matchDoc    `policy:"match"`
	Authorization Value       `policy:"authorization"`
	Authorizer    Value       `policy:"authorizer"`
	Mode          Value       `policy:"mode"`
	Scopes        List[Value] `policy:"scopes"`
	Groups        List[Value] `policy:"groups"`
	Claims        Map[Value]  `policy:"claims"`
	ClaimHeaders  Map[Value]  `policy:"claimHeaders"`
}

type matchDoc struct {
	Value
	Template Value       `policy:"path"`
	Methods  List[Value] `policy:"methods"`
	Host     Value       `policy:"host"`
}

type gatewayResponseDoc struct {
	Value
	StatusCode Value      `policy:"statusCode"`
	Headers    Map[Value] `policy:"headers"`
}
