// TLS for a public port (the router's gRPC API and its HTTP API): PEM contents.
#ifndef TANDEM_SERVER_SERVER_TLS_H_
#define TANDEM_SERVER_SERVER_TLS_H_

#include <string>

namespace tandem {

// With client_ca_pem, clients must present a certificate that CA signed (mutual TLS).
struct ServerTls {
  std::string cert_chain_pem;
  std::string private_key_pem;
  std::string client_ca_pem;  // empty: no client certificate asked for
};

}  // namespace tandem

#endif  // TANDEM_SERVER_SERVER_TLS_H_
