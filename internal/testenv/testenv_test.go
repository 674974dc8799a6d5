package testenv
import ("testing"; "github.com/cognito-extauthz/cognito-extauthz/pkg/jwks")
func TestPolicyCompiles(t *testing.T){ e:=New(t); s:=e.Policy(t, Policy); Keys(t, s, jwks.Options{}) }
