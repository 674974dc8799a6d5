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
// field is absent; Path is filled either way, so "required field is
// missing" can name it.
type docValue struct {
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
