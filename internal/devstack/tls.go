package devstack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CAFile is the file, in the state directory, that holds the certificate
// authority of a stack started with TLS, for clients that should trust it
// (curl --cacert, NODE_EXTRA_CA_CERTS, a browser's certificate settings).
const CAFile = "dev-ca.pem"

// certValidity is how long the generated certificates are valid. They are
// made anew at every start, so this only has to outlast one long session.
const certValidity = 30 * 24 * time.Hour

// devCertificate is a fresh certificate authority and a server certificate
// it signed for the loopback names, so that the API is reached over HTTPS
// as deployed. The CA exists so that a client trusts one certificate that
// names nothing, rather than a server certificate used as its own root,
// which browsers refuse. Its private key is thrown away once the server
// certificate is signed: nothing else can ever be signed with it.
type devCertificate struct {
	server tls.Certificate
	caPEM  []byte
}

func newDevCertificate(now time.Time) (*devCertificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Organization: []string{"Waymark"}, CommonName: "Waymark dev CA " + now.UTC().Format(time.RFC3339)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create the dev CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{Organization: []string{"Waymark"}, CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create the dev server certificate: %w", err)
	}
	return &devCertificate{
		server: tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key},
		caPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}, nil
}

// tlsConfig serves the certificate with at least TLS 1.2, the floor the
// deployed API's custom domain keeps.
func (c *devCertificate) tlsConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.server}, MinVersion: tls.VersionTLS12}
}

func randomSerial() *big.Int {
	// 128 random bits: serials must be unique per CA and positive.
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	return n.Add(n, big.NewInt(1))
}
