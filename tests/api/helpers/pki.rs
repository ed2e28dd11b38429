//! A throwaway PKI for TLS Redis: a CA and a server certificate made per test.

use std::path::PathBuf;

use buddahbot::local_redis::{RedisServer, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A CA and a server certificate for `127.0.0.1`/`localhost`, as PEM files in a temporary
/// folder that is removed on drop.
pub struct TestPki {
    dir: PathBuf,
    pub files: TlsFiles,
}

impl TestPki {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("buddahbot-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = new_ca("BuddahBot test CA");
        let key = KeyPair::generate().unwrap();
        // The client checks the host of the URL (an IP here) against the certificate's SANs.
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "redis-server");
        let cert = params.signed_by(&key, &ca).unwrap();

        let files = TlsFiles {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            ca: dir.join("ca.pem"),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        std::fs::write(&files.ca, ca.pem()).unwrap();
        Self { dir, files }
    }

    /// A TLS-only `redis-server` with this certificate.
    pub async fn start_server(&self) -> RedisServer {
        RedisServer::start_tls(self.files.clone()).await.unwrap()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A self-signed CA named `name`.
pub fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}
