package grpcauthz

import (
	"errors"
	"unicode/utf8"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
)

// DecodeCheckRequest decodes the wire form of a CheckRequest into req,
// keeping only the fields a check reads:
//
//	attributes.request.http.{method, host, path, headers, header_map}
//	attributes.context_extensions
//
// Every other field is skipped unread, so req holds nothing else. For the
// fields it keeps, the result is what proto.Unmarshal gives (a message
// field sent twice is merged, the last scalar wins, a map's last entry for
// a key wins, a field with an unexpected wire type is an unknown field),
// and it refuses what proto.Unmarshal refuses there (bad wire format,
// invalid UTF-8 in a string). FuzzDecodeCheckRequest holds it to that
// against proto.Unmarshal. It may accept a request that proto.Unmarshal
// refuses for a field no check reads (a malformed attributes.source, say);
// the decision is then made on the fields that were read, which are sound.
//
// It exists because decoding is the largest part of the server's cost for
// a cached token: proto.Unmarshal walks the whole message by reflection
// and allocates every string, where this copies the message once and
// slices every kept string from that copy. The strings therefore share one
// allocation: a string kept past the request would keep the whole message
// alive (a check keeps none; the token cache stores a digest).
func DecodeCheckRequest(b []byte, req *authv3.CheckRequest) error {
	d := decoder{s: string(b)}
	for f := d.fields(0, len(d.s)); f.next(); {
		if f.num == 1 {
			if req.Attributes == nil {
				req.Attributes = &authv3.AttributeContext{}
			}
			f.err = d.attributes(f.start, f.end, req.Attributes)
		}
	}
	return d.err
}

var errInvalidUTF8 = errors.New("string field contains invalid UTF-8")

// decoder reads protobuf wire format from s, one copy of the message; err
// is the first error met.
type decoder struct {
	s   string
	err error
}

// fieldIter walks the fields of one message. next stops at each field of
// wire type bytes, with its number and the bounds of its payload in the
// decoder's string; every other field is checked and skipped, as an
// unknown field is. A handler sets err to stop the walk (and the whole
// decode) with that error; the first error is kept in the decoder.
type fieldIter struct {
	d          *decoder
	b          []byte
	pos        int
	num        protowire.Number
	start, end int
	err        error
}

func (d *decoder) fields(start, end int) fieldIter {
	return fieldIter{d: d, b: d.bytes(start, end), pos: start}
}

func (f *fieldIter) next() bool {
	if f.err != nil && f.d.err == nil {
		f.d.err = f.err
	}
	for f.d.err == nil && len(f.b) > 0 {
		num, typ, n := protowire.ConsumeTag(f.b)
		if n < 0 {
			f.d.err = protowire.ParseError(n)
			return false
		}
		if num > protowire.MaxValidNumber {
			f.d.err = errors.New("invalid field number")
			return false
		}
		f.b, f.pos = f.b[n:], f.pos+n
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, f.b)
			if n < 0 {
				f.d.err = protowire.ParseError(n)
				return false
			}
			f.b, f.pos = f.b[n:], f.pos+n
			continue
		}
		v, n := protowire.ConsumeBytes(f.b)
		if n < 0 {
			f.d.err = protowire.ParseError(n)
			return false
		}
		f.num, f.start, f.end = num, f.pos+n-len(v), f.pos+n
		f.b, f.pos = f.b[n:], f.pos+n
		return true
	}
	return false
}

// bytes is s[start:end] as a byte slice, without a copy: protowire reads
// byte slices, and the decoder never writes to them nor lets them out.
func (d *decoder) bytes(start, end int) []byte {
	if start == end {
		return nil
	}
	v := d.s[start:end]
	return unsafe.Slice(unsafe.StringData(v), len(v))
}

// str is the string field s[start:end], refused when it is not UTF-8 (as
// proto3 string fields are).
func (d *decoder) str(start, end int) (string, error) {
	v := d.s[start:end]
	if !utf8.ValidString(v) {
		return "", errInvalidUTF8
	}
	return v, nil
}

func (d *decoder) attributes(start, end int, a *authv3.AttributeContext) error {
	for f := d.fields(start, end); f.next(); {
		switch f.num {
		case 4: // request
			if a.Request == nil {
				a.Request = &authv3.AttributeContext_Request{}
			}
			for g := d.fields(f.start, f.end); g.next(); {
				if g.num == 2 { // http
					if a.Request.Http == nil {
						a.Request.Http = &authv3.AttributeContext_HttpRequest{}
					}
					g.err = d.http(g.start, g.end, a.Request.Http)
				}
			}
		case 10: // context_extensions
			if a.ContextExtensions == nil {
				a.ContextExtensions = make(map[string]string, 1)
			}
			f.err = d.mapEntry(f.start, f.end, a.ContextExtensions)
		}
	}
	return d.err
}

func (d *decoder) http(start, end int, h *authv3.AttributeContext_HttpRequest) error {
	if h.Headers == nil {
		h.Headers = make(map[string]string, d.count(start, end, 3))
	}
	for f := d.fields(start, end); f.next(); {
		switch f.num {
		case 2:
			h.Method, f.err = d.str(f.start, f.end)
		case 3:
			f.err = d.mapEntry(f.start, f.end, h.Headers)
		case 4:
			h.Path, f.err = d.str(f.start, f.end)
		case 5:
			h.Host, f.err = d.str(f.start, f.end)
		case 13: // header_map
			if h.HeaderMap == nil {
				h.HeaderMap = &corev3.HeaderMap{}
			}
			f.err = d.headerMap(f.start, f.end, h.HeaderMap)
		case 1, 6, 7, 8, 10, 11:
			// id, scheme, query, fragment, protocol, body: strings no
			// check reads, validated as proto.Unmarshal validates them.
			_, f.err = d.str(f.start, f.end)
		}
	}
	return d.err
}

// count is how many bytes-typed fields numbered num the message
// s[start:end] holds at its top level, to size a map before filling it. A
// malformed message counts what it can; the decode proper reports the
// error.
func (d *decoder) count(start, end int, num protowire.Number) int {
	c := 0
	probe := decoder{s: d.s}
	for f := probe.fields(start, end); f.next(); {
		if f.num == num {
			c++
		}
	}
	return c
}

// mapEntry decodes one map<string, string> entry into m: a missing key or
// value is "", and the last of each wins.
func (d *decoder) mapEntry(start, end int, m map[string]string) error {
	var k, v string
	for f := d.fields(start, end); f.next(); {
		switch f.num {
		case 1:
			k, f.err = d.str(f.start, f.end)
		case 2:
			v, f.err = d.str(f.start, f.end)
		}
	}
	if d.err != nil {
		return d.err
	}
	m[k] = v
	return nil
}

func (d *decoder) headerMap(start, end int, hm *corev3.HeaderMap) error {
	for f := d.fields(start, end); f.next(); {
		if f.num != 1 {
			continue
		}
		hv := &corev3.HeaderValue{}
		hm.Headers = append(hm.Headers, hv)
		for g := d.fields(f.start, f.end); g.next(); {
			switch g.num {
			case 1:
				hv.Key, g.err = d.str(g.start, g.end)
			case 2:
				hv.Value, g.err = d.str(g.start, g.end)
			case 3:
				// bytes: no UTF-8 rule. A copy, so that no byte slice
				// aliases the decoder's string.
				hv.RawValue = append([]byte{}, d.s[g.start:g.end]...)
			}
		}
	}
	return d.err
}
