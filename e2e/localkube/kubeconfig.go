package localkube

import (
	"fmt"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes a kubeconfig for one client identity. The files
// reference the certificates by path so a human can read them and the
// components pick up the same PKI.
func writeKubeconfig(path, server string, p *pki, identity string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["localkube"] = &clientcmdapi.Cluster{
		Server:               server,
		CertificateAuthority: p.path("ca.crt"),
	}
	cfg.AuthInfos[identity] = &clientcmdapi.AuthInfo{
		ClientCertificate: p.path(identity + ".crt"),
		ClientKey:         p.path(identity + ".key"),
	}
	cfg.Contexts["localkube"] = &clientcmdapi.Context{Cluster: "localkube", AuthInfo: identity, Namespace: "default"}
	cfg.CurrentContext = "localkube"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// componentKubeconfig is where the in-netns kubeconfig of one identity lives.
func componentKubeconfig(stateDir, identity string) string {
	return filepath.Join(stateDir, "kubeconfig."+identity)
}
