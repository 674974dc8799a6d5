package policy

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/internal/httpsyntax"
)

var (
	// regionRE admits us-east-1, us-gov-west-1, eu-central-2, cn-north-1,
	// and regions not yet announced of the same shape.
	regionRE = regexp.MustCompile(`^[a-z]{2,}(?:-[a-z]+)+-[0-9]+$`)
	// poolIDRE is Cognito's REGION_ID.
	poolIDRE = regexp.MustCompile(`^([a-z]{2,}(?:-[a-z]+)+-[0-9]+)_([A-Za-z0-9]+)$`)
	// arnRE splits arn:PARTITION:cognito-idp:REGION:ACCOUNT:userpool/ID;
	// each part is then checked on its own for a precise message.
	arnRE     = regexp.MustCompile(`^arn:([^:]*):cognito-idp:([^:]*):([^:]*):userpool/(.*)$`)
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	// partitionRE is aws, aws-cn, aws-us-gov, aws-iso-b and the like.
	partitionRE = regexp.MustCompile(`^aws(?:-[a-z]+)*$`)
)

// maxPoolIDLen is Cognito's limit on a user pool id.
const maxPoolIDLen = 55

// parsePoolID splits a Cognito pool id into region and id.
func parsePoolID(id string) (region string, err error) {
	if len(id) > maxPoolIDLen {
		return "", fmt.Errorf("user pool id is longer than %d characters", maxPoolIDLen)
	}
	m := poolIDRE.FindStringSubmatch(id)
	if m == nil {
		return "", fmt.Errorf("malformed user pool id %q: want REGION_ID, e.g. us-east-1_AbCdEfGhI", id)
	}
	return m[1], nil
}

// parseARN returns the region and pool id of a user pool ARN.
func parseARN(arn string) (region, id string, err error) {
	m := arnRE.FindStringSubmatch(arn)
	if m == nil {
		return "", "", fmt.Errorf("malformed user pool ARN %q: want arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL_ID", arn)
	}
	partition, region, account, id := m[1], m[2], m[3], m[4]
	var errs []error
	if !partitionRE.MatchString(partition) {
		errs = append(errs, fmt.Errorf("partition %q is not aws or aws-PARTITION", partition))
	}
	if !regionRE.MatchString(region) {
		errs = append(errs, fmt.Errorf("region %q is not a region such as us-east-1", region))
	} else if want := partitionOf(region); want != "" && partition != want {
		errs = append(errs, fmt.Errorf("region %s belongs to partition %s, not %s", region, want, partition))
	} else if want == "" && (partition == "aws-cn" || partition == "aws-us-gov") {
		errs = append(errs, fmt.Errorf("partition %s has no region %s", partition, region))
	}
	if !accountRE.MatchString(account) {
		errs = append(errs, fmt.Errorf("account %q is not 12 digits", account))
	}
	if idRegion, err := parsePoolID(id); err != nil {
		errs = append(errs, err)
	} else if regionRE.MatchString(region) && idRegion != region {
		errs = append(errs, fmt.Errorf("user pool id %s is in region %s, not %s", id, idRegion, region))
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return "", "", fmt.Errorf("malformed user pool ARN %q: %s", arn, strings.Join(msgs, "; "))
	}
	return region, id, nil
}

// partitionOf returns the partition a region prefix pins, "" when the
// region is in the standard partition or one not checked here.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return ""
}

// dnsSuffix returns the domain of the region's Cognito endpoints.
func dnsSuffix(region string) string {
	if strings.HasPrefix(region, "cn-") {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

// cognitoIssuers returns both issuer forms of a pool: the original one,
// and the issuer-cognito-idp one that pools opted in to the new format
// (and multi-Region replicas) use.
func cognitoIssuers(region, id string) []string {
	d := dnsSuffix(region)
	return []string{
		"https://cognito-idp." + region + "." + d + "/" + id,
		"https://issuer-cognito-idp." + region + "." + d + "/" + id,
	}
}

// cognitoJWKSURL is the pool's JWKS in the original form: the
// issuer-cognito-idp endpoint answers 403 for pools not opted in to it,
// while this one serves every pool.
func cognitoJWKSURL(region, id string) string {
	return "https://cognito-idp." + region + "." + dnsSuffix(region) + "/" + id + "/.well-known/jwks.json"
}

// checkIssuer accepts an absolute http(s) URL written exactly as tokens
// carry it: iss is compared byte for byte.
func checkIssuer(s string) error {
	if strings.TrimSpace(s) != s || httpsyntax.HasControl(s) || strings.ContainsAny(s, " \t") {
		return errors.New("issuer must not contain whitespace or control characters")
	}
	if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
		return fmt.Errorf("issuer %q must be an absolute URL starting with https:// (or http://)", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("issuer %q is not a URL: %w", s, err)
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("issuer %q has no host", s)
	case u.User != nil:
		return fmt.Errorf("issuer %q must not carry user information", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("issuer %q must not have a query or fragment", s)
	}
	return nil
}
