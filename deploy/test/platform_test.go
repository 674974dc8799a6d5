package deploy_test

import (
	_ "github.com/envoyproxy/gateway/api/v1alpha1"
	_ "github.com/projectcontour/contour/apis/projectcontour/v1"
	_ "github.com/projectcontour/contour/apis/projectcontour/v1alpha1"
	_ "istio.io/client-go/pkg/apis/security/v1"
	_ "istio.io/api/mesh/v1alpha1"
	_ "sigs.k8s.io/gateway-api/apis/v1"
	_ "sigs.k8s.io/yaml"
)
