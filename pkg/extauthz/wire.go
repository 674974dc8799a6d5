package extauthz

import (
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// The dynamic metadata of an allowed check is most of what a cached check
// costs when it is built as structpb values (a map, a value per field) and
// marshalled. Its token part is the same for every request a cached token
// answers, so it is encoded once per verified token (token.Claims.Memo)
// and the response carries it pre-encoded: as the raw bytes of
// CheckResponse field 4 (dynamic_metadata), set as the message's unknown
// fields. Both the standard and the vtprotobuf marshallers copy unknown
// fields verbatim, so Envoy receives an ordinary google.protobuf.Struct;
// Response builds the same content as structpb values for tools and tests,
// and TestWireResponseMatchesResponse holds the two equal.

// Field numbers of the messages written here.
const (
	checkResponseDynamicMetadata protowire.Number = 4 // CheckResponse.dynamic_metadata
	structFields                 protowire.Number = 1 // Struct.fields (map entries)
	mapEntryKey                  protowire.Number = 1
	mapEntryValue                protowire.Number = 2
	valueString                  protowire.Number = 3 // Value.string_value
	valueList                    protowire.Number = 6 // Value.list_value
	listValues                   protowire.Number = 1 // ListValue.values
)

// tokenMetadata encodes the per-token Struct entries of an allow: sub,
// username, token_use, client_id, pool and scopes.
func tokenMetadata(c *token.Claims) []byte {
	scopes := c.Scopes()
	size := 64
	for _, s := range [...]string{c.Subject(), c.Username(), c.TokenUse(), c.ClientID(), c.Pool()} {
		size += len(s) + 24
	}
	for _, s := range scopes {
		size += len(s) + 8
	}
	b := make([]byte, 0, size)
	b = appendStringEntry(b, "sub", c.Subject())
	b = appendStringEntry(b, "username", c.Username())
	b = appendStringEntry(b, "token_use", c.TokenUse())
	b = appendStringEntry(b, "client_id", c.ClientID())
	b = appendStringEntry(b, "pool", c.Pool())
	return appendListEntry(b, "scopes", scopes)
}

// wireMetadata sets resp's dynamic metadata to the entries of an allow
// (route, then the token's, encoded once per token) or of a denial (route
// and reason), as pre-encoded bytes. One allocation per response.
func wireMetadata(resp *authv3.CheckResponse, d *authz.Decision) {
	route := d.RouteName()
	var tok []byte
	var entries int
	if d.Allowed {
		if d.Claims != nil {
			tok = d.Claims.Memo(tokenMetadata)
		}
		entries = stringEntrySize("route", route) + len(tok)
	} else {
		entries = stringEntrySize("route", route) + stringEntrySize("reason", string(d.Reason))
	}
	b := make([]byte, 0, protowire.SizeTag(checkResponseDynamicMetadata)+protowire.SizeBytes(entries))
	b = protowire.AppendTag(b, checkResponseDynamicMetadata, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(entries))
	b = appendStringEntry(b, "route", route)
	if d.Allowed {
		b = append(b, tok...)
	} else {
		b = appendStringEntry(b, "reason", string(d.Reason))
	}
	resp.DynamicMetadata = nil
	resp.ProtoReflect().SetUnknown(protoreflect.RawFields(b))
}

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

func appendListEntry(b []byte, key string, values []string) []byte {
	list := 0
	for _, v := range values {
		list += protowire.SizeTag(listValues) + protowire.SizeBytes(stringValueSize(v))
	}
	valueLen := protowire.SizeTag(valueList) + protowire.SizeBytes(list)
	b = appendEntryHead(b, key, valueLen)
	b = protowire.AppendTag(b, valueList, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(list))
	for _, v := range values {
		b = protowire.AppendTag(b, listValues, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(stringValueSize(v)))
		b = protowire.AppendTag(b, valueString, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}
