package grpcauthz

import (
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
)

// The dynamic metadata of an allowed check was most of what a cached check
// cost when it was built as structpb values (a map, a value per field, a
// oneof wrapper each) and then marshalled by reflection. Check now writes
// it straight to the wire form, in the one allocation the response needs
// anyway, from the strings of the verified (and usually cached) token: the
// raw bytes of CheckResponse field 4 (dynamic_metadata), set as the
// message's unknown fields. Both the standard and the vtprotobuf
// marshallers copy unknown fields verbatim, so Envoy receives an ordinary
// google.protobuf.Struct; Metadata parses it back for tools and tests.
//
// The encoded bytes are not kept per cached token: they would repeat the
// token's strings in every cache entry (about a quarter of an entry), to
// save an encoding that costs less than the allocation it fills.

// Field numbers of the messages written here.
const (
	checkResponseDynamicMetadata protowire.Number = 4 // CheckResponse.dynamic_metadata
	structFields                 protowire.Number = 1 // Struct.fields (map entries)
	mapEntryKey                  protowire.Number = 1
	mapEntryValue                protowire.Number = 2
	valueString                  protowire.Number = 3 // Value.string_value
	valueBool                    protowire.Number = 4 // Value.bool_value
	valueList                    protowire.Number = 6 // Value.list_value
	listValues                   protowire.Number = 1 // ListValue.values
)

// wireMetadata sets resp's dynamic metadata to the entries of an allow
// (route, sub, username, token_use, client_id, pool, scopes) or of a denial
// (route and reason), pre-encoded. One allocation per response.
func wireMetadata(resp *authv3.CheckResponse, d *authz.Decision) {
	route := d.RouteName()
	entries := stringEntrySize(check.MetaRoute, route)
	c := d.Claims
	var scopes scopeList
	switch {
	case !d.Allowed:
		entries += stringEntrySize(check.MetaReason, string(d.Reason))
	case c != nil:
		scopes = c
		entries += stringEntrySize(check.MetaSub, c.Subject()) + stringEntrySize(check.MetaUsername, c.Username()) +
			stringEntrySize(check.MetaTokenUse, c.TokenUse()) + stringEntrySize(check.MetaClientID, c.ClientID()) +
			stringEntrySize(check.MetaPool, c.Pool()) + listEntrySize(check.MetaScopes, scopes)
	}
	if d.DryRun {
		// A dry-run route's would-be denial: allowed, but the metadata
		// says so and why.
		entries += entrySize(check.MetaDryRun, boolValueSize) + stringEntrySize(check.MetaReason, string(d.Reason))
	}
	b := make([]byte, 0, protowire.SizeTag(checkResponseDynamicMetadata)+protowire.SizeBytes(entries))
	b = protowire.AppendTag(b, checkResponseDynamicMetadata, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(entries))
	b = appendStringEntry(b, check.MetaRoute, route)
	switch {
	case !d.Allowed:
		b = appendStringEntry(b, check.MetaReason, string(d.Reason))
	case c != nil:
		b = appendStringEntry(b, check.MetaSub, c.Subject())
		b = appendStringEntry(b, check.MetaUsername, c.Username())
		b = appendStringEntry(b, check.MetaTokenUse, c.TokenUse())
		b = appendStringEntry(b, check.MetaClientID, c.ClientID())
		b = appendStringEntry(b, check.MetaPool, c.Pool())
		b = appendListEntry(b, check.MetaScopes, scopes)
	}
	if d.DryRun {
		b = appendEntryHead(b, check.MetaDryRun, boolValueSize)
		b = protowire.AppendTag(b, valueBool, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
		b = appendStringEntry(b, check.MetaReason, string(d.Reason))
	}
	resp.DynamicMetadata = nil
	resp.ProtoReflect().SetUnknown(protoreflect.RawFields(b))
}

// scopeList is the token's scopes, read without copying them.
type scopeList interface {
	NumScopes() int
	Scope(i int) string
}

// boolValueSize is the encoded size of a Value holding true.
var boolValueSize = protowire.SizeTag(valueBool) + protowire.SizeVarint(1)

// stringValueSize is the encoded size of a Value holding s.
func stringValueSize(s string) int {
	return protowire.SizeTag(valueString) + protowire.SizeBytes(len(s))
}

// entrySize is the encoded size of one Struct.fields map entry whose value
// message is valueLen bytes, tag and length included.
func entrySize(key string, valueLen int) int {
	inner := protowire.SizeTag(mapEntryKey) + protowire.SizeBytes(len(key)) +
		protowire.SizeTag(mapEntryValue) + protowire.SizeBytes(valueLen)
	return protowire.SizeTag(structFields) + protowire.SizeBytes(inner)
}

func stringEntrySize(key, value string) int { return entrySize(key, stringValueSize(value)) }

// listSize is the encoded size of a ListValue of strings.
func listSize(values scopeList) int {
	n := 0
	for i := range values.NumScopes() {
		v := values.Scope(i)
		n += protowire.SizeTag(listValues) + protowire.SizeBytes(stringValueSize(v))
	}
	return n
}

func listEntrySize(key string, values scopeList) int {
	return entrySize(key, protowire.SizeTag(valueList)+protowire.SizeBytes(listSize(values)))
}

func appendEntryHead(b []byte, key string, valueLen int) []byte {
	inner := protowire.SizeTag(mapEntryKey) + protowire.SizeBytes(len(key)) +
		protowire.SizeTag(mapEntryValue) + protowire.SizeBytes(valueLen)
	b = protowire.AppendTag(b, structFields, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	b = protowire.AppendTag(b, mapEntryKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, mapEntryValue, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(valueLen))
}

func appendStringEntry(b []byte, key, value string) []byte {
	b = appendEntryHead(b, key, stringValueSize(value))
	b = protowire.AppendTag(b, valueString, protowire.BytesType)
	return protowire.AppendString(b, value)
}

func appendListEntry(b []byte, key string, values scopeList) []byte {
	list := listSize(values)
	valueLen := protowire.SizeTag(valueList) + protowire.SizeBytes(list)
	b = appendEntryHead(b, key, valueLen)
	b = protowire.AppendTag(b, valueList, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(list))
	for i := range values.NumScopes() {
		v := values.Scope(i)
		b = protowire.AppendTag(b, listValues, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(stringValueSize(v)))
		b = protowire.AppendTag(b, valueString, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}
