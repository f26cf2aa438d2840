package kubelet

import (
	"fmt"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// resolvConf renders the pod's /etc/resolv.conf for its dnsPolicy.
// hostResolv is the host's resolv.conf (dnsPolicy Default).
func resolvConf(pod *v1.Pod, dnsServer, domain, hostResolv string) string {
	var servers, searches, options []string
	switch pod.Spec.DNSPolicy {
	case v1.DNSDefault:
		for _, line := range strings.Split(hostResolv, "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "nameserver":
				servers = append(servers, f[1])
			case "search":
				searches = append(searches, f[1:]...)
			case "options":
				options = append(options, f[1:]...)
			}
		}
	case v1.DNSNone:
	default: // ClusterFirst, ClusterFirstWithHostNet, unset
		servers = []string{dnsServer}
		searches = []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
		options = []string{"ndots:5"}
	}
	if c := pod.Spec.DNSConfig; c != nil {
		servers = append(servers, c.Nameservers...)
		searches = append(searches, c.Searches...)
		for _, o := range c.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			// A dnsConfig option overrides the same option name.
			kept := options[:0]
			for _, e := range options {
				if strings.SplitN(e, ":", 2)[0] != o.Name {
					kept = append(kept, e)
				}
			}
			options = append(kept, opt)
		}
	}
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.String()
}

// hostsFile renders the pod's /etc/hosts like the real kubelet: with a
// subdomain the pod's line carries its FQDN (<hostname>.<subdomain>.<ns>.svc.<domain>).
func hostsFile(pod *v1.Pod, podIP, domain string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	host := podHostname(pod)
	if pod.Spec.Subdomain != "" {
		fqdn := fmt.Sprintf("%s.%s.%s.svc.%s", host, pod.Spec.Subdomain, pod.Namespace, domain)
		fmt.Fprintf(&b, "%s\t%s\t%s\n", podIP, fqdn, host)
	} else {
		fmt.Fprintf(&b, "%s\t%s\n", podIP, host)
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return b.String()
}

// writeEtcFiles writes the pod's hosts, hostname and resolv.conf under dir.
func writeEtcFiles(dir string, pod *v1.Pod, net PodNet, domain string) error {
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"hosts":       hostsFile(pod, net.IP, domain),
		"hostname":    podHostname(pod) + "\n",
		"resolv.conf": resolvConf(pod, net.DNSServer, domain, string(hostResolv)),
	}
	for name, content := range files {
		if err := os.WriteFile(dir+"/"+name, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
