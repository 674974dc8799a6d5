package k8s_test

import (
	"fmt"
	"path"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// certificate is the part of cert-manager's Certificate (cert-manager.io/v1)
// these manifests use, decoded strictly: a field outside it is an error
// here (extend the struct after reading cert-manager's API reference), so a
// misspelling cannot slip through as it would through a generic map. The
// cert-manager module itself is not imported: it would pull a controller's
// dependency tree into a test of YAML.
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName  string   `json:"secretName"`
		IsCA        bool     `json:"isCA,omitempty"`
		CommonName  string   `json:"commonName,omitempty"`
		DNSNames    []string `json:"dnsNames,omitempty"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		Usages      []string `json:"usages,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind,omitempty"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// issuer is the part of cert-manager's Issuer these manifests use.
type issuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}

// tlsSettings are the --grpc-tls-* files, resolved flag > env > default.
type tlsSettings struct{ cert, key, clientCA string }

// checkGRPCTLS: the gRPC listener serves mTLS from a cert-manager Secret
// mounted as a directory, whose certificate is for the name Envoy dials
// and whose CA also issues a client certificate for Envoy.
func checkGRPCTLS(o *objects, pod *corev1.PodTemplateSpec, c *corev1.Container, s tlsSettings) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf("grpc tls: "+format, a...)) }
	if s.cert == "" || s.key == "" {
		return append(errs, fmt.Errorf("grpc tls: --grpc-tls-cert and --grpc-tls-key (EXTAUTHZ_GRPC_TLS_*) must be set: Envoy speaks TLS to this layout"))
	}
	if s.clientCA == "" {
		fail("--grpc-tls-client-ca must be set: this layout requires Envoy's client certificate (mTLS)")
	}
	secrets := map[string]string{} // file -> Secret name
	for _, f := range []struct{ file, key string }{{s.cert, "tls.crt"}, {s.key, "tls.key"}, {s.clientCA, "ca.crt"}} {
		if f.file == "" {
			continue
		}
		name, key, err := mountedSecret(pod, c, f.file)
		if err != nil {
			fail("%s: %v", f.file, err)
			continue
		}
		if key != f.key {
			fail("%s is the Secret's %s, want %s (the key cert-manager writes)", f.file, key, f.key)
		}
		secrets[f.file] = name
	}
	if len(secrets) == 0 {
		return errs
	}
	secret := secrets[s.cert]
	for file, name := range secrets {
		if name != secret {
			fail("%s comes from Secret %s, the certificate from %s: rotated apart, they stop matching", file, name, secret)
		}
	}
	server := certBySecret(o, secret)
	if server == nil {
		return append(errs, fmt.Errorf("grpc tls: no Certificate in the overlay writes Secret %q", secret))
	}
	if !slices.Contains(server.Spec.Usages, "server auth") {
		fail("Certificate %s lacks usage \"server auth\"", server.Name)
	}
	for _, dns := range grpcServiceNames(o) {
		if !slices.Contains(server.Spec.DNSNames, dns) {
			fail("Certificate %s dnsNames %v lack %s, the name Envoy dials and checks", server.Name, server.Spec.DNSNames, dns)
		}
	}
	ca := caBehind(o, server)
	if ca == nil {
		fail("Certificate %s is not issued by a CA Issuer of the overlay whose CA is a Certificate with isCA: ca.crt would not be the CA clients are issued from", server.Name)
	}
	var client bool
	for _, cert := range o.certificates {
		if cert.Spec.IssuerRef == server.Spec.IssuerRef && slices.Contains(cert.Spec.Usages, "client auth") {
			client = true
		}
	}
	if !client {
		fail("no client certificate (usage \"client auth\") from Issuer %s for Envoy: under mTLS nothing could connect", server.Spec.IssuerRef.Name)
	}
	return errs
}

// mountedSecret finds the Secret volume that provides file through a
// directory mount and returns the Secret's name and the key of the file.
func mountedSecret(pod *corev1.PodTemplateSpec, c *corev1.Container, file string) (string, string, error) {
	dir, base := path.Split(file)
	dir = path.Clean(dir)
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) != dir {
			continue
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			return "", "", fmt.Errorf("mounted with subPath at %s: the kubelet never updates subPath mounts, so a renewed certificate never arrives", m.MountPath)
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.Secret == nil {
				return "", "", fmt.Errorf("volume %s is not a Secret", v.Name)
			}
			key := base
			for _, it := range v.Secret.Items {
				if it.Path == base {
					key = it.Key
				}
			}
			return v.Secret.SecretName, key, nil
		}
		return "", "", fmt.Errorf("volume %s not defined", m.Name)
	}
	return "", "", fmt.Errorf("no volume mounted at %s", dir)
}

func certBySecret(o *objects, secret string) *certificate {
	for _, c := range o.certificates {
		if c.Spec.SecretName == secret {
			return c
		}
	}
	return nil
}

// caBehind returns the CA Certificate behind leaf's Issuer, or nil.
func caBehind(o *objects, leaf *certificate) *certificate {
	ref := leaf.Spec.IssuerRef
	if ref.Kind != "Issuer" || ref.Group != "cert-manager.io" {
		return nil
	}
	for _, is := range o.issuers {
		if is.Name == ref.Name && is.Spec.CA != nil {
			if ca := certBySecret(o, is.Spec.CA.SecretName); ca != nil && ca.Spec.IsCA {
				return ca
			}
		}
	}
	return nil
}

// grpcServiceNames are the in-cluster DNS names of the Services exposing
// the gRPC port.
func grpcServiceNames(o *objects) []string {
	var names []string
	for _, svc := range o.services {
		for _, p := range svc.Spec.Ports {
			if p.Port == 9001 {
				names = append(names, fmt.Sprintf("%s.%s.svc.cluster.local", svc.Name, svc.Namespace))
			}
		}
	}
	return names
}
