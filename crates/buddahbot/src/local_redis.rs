//! A private `redis-server` child process on a free loopback port, for the dev server (when no
//! `REDIS_URL` is set) and for tests. Never touches port 6379 or a server someone else runs.
//!
//! [`RedisServer::start_tls`] starts one that speaks TLS only, for tests of `rediss://`, and
//! [`RedisCluster::start`] a Redis Cluster of several such servers, for tests of
//! `REDIS_CLUSTER`.
//!
//! The child is killed when the [`RedisServer`] is dropped, and, on Linux, also when this
//! process dies without running destructors (parent-death signal), so no server outlives us.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::process::{Child, Command};

/// How long to wait for a started server to answer `PING`, and for a new Cluster to agree on
/// its slots.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Starts tried, each on new ports, before a server that exits at once is an error.
const START_ATTEMPTS: u32 = 3;

/// Why a private server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LocalRedisError {
    #[error(
        "`redis-server` was not found on PATH; install it (Debian/Ubuntu: `sudo apt-get install -y redis-server`, macOS: `brew install redis`) or set REDIS_URL"
    )]
    NotInstalled,
    #[error("could not start `redis-server`")]
    Spawn(#[source] std::io::Error),
    #[error("`redis-server` did not answer PING within {timeout:?}; its log says: {log}")]
    NoAnswer { timeout: Duration, log: String },
    /// `redis-server` exited while starting (a port taken meanwhile, a bad option), with its log.
    #[error("redis-server exited while starting ({status}); its log:\n{log}")]
    Exited { status: String, log: String },
    #[error(
        "`redis-cli` was not found on PATH; it comes with Redis (Debian/Ubuntu: `sudo apt-get install -y redis-tools`)"
    )]
    NoRedisCli,
    #[error("`redis-cli --cluster create` failed: {output}")]
    ClusterCreate { output: String },
    #[error("the cluster did not reach `cluster_state:ok` within {timeout:?}; a node says: {info}")]
    ClusterNotReady { timeout: Duration, info: String },
}

/// PEM files of a TLS server: its certificate chain and key, and the CA that signed it (which
/// redis-server also needs, and which the readiness check trusts).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// A running private `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Set for a TLS-only server: `port` is then its TLS port.
    tls: Option<TlsFiles>,
    /// Whether the server runs in Cluster mode (its node configuration lives in `dir`, so a
    /// restart keeps its identity and slots).
    cluster: bool,
    /// A Cluster node's bus port, picked free like `port` (not `port + 10000`, which may be
    /// taken or out of range).
    bus_port: u16,
    dir: PathBuf,
    /// Whether `dir` was made by us (and is removed on drop).
    owns_dir: bool,
    /// Whether every write is appended to an AOF in `dir` and fsynced before it is
    /// acknowledged, so a restart (even after `SIGKILL`) finds every acknowledged write.
    durable: bool,
}

impl RedisServer {
    /// Starts a server on a free port with persistence off, data and log in a fresh temporary
    /// folder, and waits until it answers `PING`.
    ///
    /// # Errors
    /// [`LocalRedisError::NotInstalled`] without `redis-server` on `PATH`; `Spawn` when it
    /// cannot be started; `NoAnswer` (with its log) when it does not come up in time.
    pub async fn start() -> Result<Self, LocalRedisError> {
        Self::start_with(None, false).await
    }

    /// As [`RedisServer::start`], but the server accepts TLS only (no plaintext port), with
    /// the certificate in `tls` and no client certificates required; [`RedisServer::url`] is
    /// then `rediss://`. The certificate must be valid for `127.0.0.1`.
    ///
    /// # Errors
    /// As [`RedisServer::start`]; `Spawn` also when the CA file cannot be read.
    pub async fn start_tls(tls: TlsFiles) -> Result<Self, LocalRedisError> {
        Self::start_with(Some(tls), false).await
    }

    /// As [`RedisServer::start`], but durable: `--appendonly yes --appendfsync always`, so a
    /// [`RedisServer::restart`] after a kill finds every write the server acknowledged (the
    /// chaos tests kill it under load).
    ///
    /// # Errors
    /// As [`RedisServer::start`].
    pub async fn start_durable() -> Result<Self, LocalRedisError> {
        let mut server = Self::start_with(None, false).await?;
        server.durable = true;
        server.restart().await?;
        Ok(server)
    }

    async fn start_with(tls: Option<TlsFiles>, cluster: bool) -> Result<Self, LocalRedisError> {
        // A port free when picked may be taken before the server binds it (by another test's
        // connection, say): the server then exits at once, and is started again on new ports.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port().map_err(LocalRedisError::Spawn)?;
            let mut bus_port = 0;
            while cluster && (bus_port == 0 || bus_port == port) {
                bus_port = free_port().map_err(LocalRedisError::Spawn)?;
            }
            let dir =
                std::env::temp_dir().join(format!("buddahbot-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(LocalRedisError::Spawn)?;
            let mut server = Self {
                child: None,
                port,
                tls: tls.clone(),
                cluster,
                bus_port,
                dir,
                owns_dir: true,
                durable: false,
            };
            match server.spawn().await {
                Ok(()) => return Ok(server),
                Err(LocalRedisError::Exited { .. }) if attempt < START_ATTEMPTS => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Starts the server again on the same port (after [`RedisServer::stop`]), as a restart
    /// of a real server would look to clients.
    ///
    /// # Errors
    /// As [`RedisServer::start`].
    pub async fn restart(&mut self) -> Result<(), LocalRedisError> {
        self.stop().await;
        self.spawn().await
    }

    /// Kills the server and waits for it to exit. Clients see their connections drop.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id while it runs (to freeze it with `SIGSTOP` in a test).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    async fn spawn(&mut self) -> Result<(), LocalRedisError> {
        let log = self.dir.join("redis.log");
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => {
                command.args(["--port", &self.port.to_string()]);
            }
            Some(tls) => {
                // Port 0 turns the plaintext listener off.
                command
                    .args(["--port", "0", "--tls-port", &self.port.to_string()])
                    .arg("--tls-cert-file")
                    .arg(&tls.cert)
                    .arg("--tls-key-file")
                    .arg(&tls.key)
                    .arg("--tls-ca-cert-file")
                    .arg(&tls.ca)
                    .args(["--tls-auth-clients", "no"]);
                if self.cluster {
                    command.args(["--tls-cluster", "yes"]);
                }
            }
        }
        if self.cluster {
            command
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-port", &self.bus_port.to_string()])
                .arg("--cluster-config-file")
                .arg(self.dir.join("nodes.conf"))
                // Slots of a stopped node are refused, but the others keep serving theirs.
                .args(["--cluster-require-full-coverage", "no"]);
        }
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", if self.durable { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let child = command.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LocalRedisError::NotInstalled,
            _ => LocalRedisError::Spawn(e),
        })?;
        self.child = Some(child);

        let client = self.client()?;
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(LocalRedisError::Exited {
                    status: status.to_string(),
                    log: std::fs::read_to_string(&log).unwrap_or_default(),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                self.stop().await;
                return Err(LocalRedisError::NoAnswer {
                    timeout: STARTUP_TIMEOUT,
                    log: std::fs::read_to_string(&log).unwrap_or_default(),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl RedisServer {
    /// A client for this server (for readiness checks and tests); over TLS it trusts the
    /// server's CA only.
    ///
    /// # Errors
    /// `Spawn` when the CA file cannot be read.
    pub fn client(&self) -> Result<redis::Client, LocalRedisError> {
        let as_spawn = |e: redis::RedisError| LocalRedisError::Spawn(std::io::Error::other(e));
        match &self.tls {
            None => redis::Client::open(self.url()).map_err(as_spawn),
            Some(tls) => {
                // rustls needs a process-wide crypto provider; a second install is a no-op.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let ca = std::fs::read(&tls.ca).map_err(LocalRedisError::Spawn)?;
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca),
                };
                redis::Client::build_with_tls(self.url(), certs).map_err(as_spawn)
            }
        }
    }
}

/// A private Redis Cluster of [`RedisServer`]s on free loopback ports, each a primary with
/// an even share of the slots and no replicas. Every node is killed when this is dropped.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `primaries` servers in Cluster mode (TLS-only ones when `tls` is set, with
    /// TLS on the cluster bus too), joins them with `redis-cli --cluster create`, and waits
    /// until every node reports `cluster_state:ok`.
    ///
    /// # Errors
    /// As [`RedisServer::start`]; [`LocalRedisError::NoRedisCli`] without `redis-cli` on `PATH`;
    /// `ClusterCreate` when it fails; `ClusterNotReady` when the nodes do not agree in time.
    pub async fn start(primaries: usize, tls: Option<TlsFiles>) -> Result<Self, LocalRedisError> {
        let mut nodes = Vec::with_capacity(primaries);
        for _ in 0..primaries {
            nodes.push(RedisServer::start_with(tls.clone(), true).await?);
        }
        let cluster = Self { nodes };
        cluster.create(tls.as_ref()).await?;
        cluster.wait_until_ok().await?;
        Ok(cluster)
    }

    async fn create(&self, tls: Option<&TlsFiles>) -> Result<(), LocalRedisError> {
        let mut command = Command::new("redis-cli");
        if let Some(tls) = tls {
            command.arg("--tls").arg("--cacert").arg(&tls.ca);
        }
        command.args(["--cluster", "create"]);
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.port));
        }
        command
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let run = tokio::time::timeout(STARTUP_TIMEOUT, command.output());
        let output = match run.await {
            Err(_) => {
                return Err(LocalRedisError::ClusterCreate {
                    output: format!("no answer within {STARTUP_TIMEOUT:?}"),
                });
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LocalRedisError::NoRedisCli);
            }
            Ok(Err(e)) => return Err(LocalRedisError::Spawn(e)),
            Ok(Ok(output)) => output,
        };
        if !output.status.success() {
            return Err(LocalRedisError::ClusterCreate {
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
        Ok(())
    }

    /// Polls `CLUSTER INFO` on every node until all say `cluster_state:ok`.
    ///
    /// # Errors
    /// `ClusterNotReady`, with the last answer, when that takes longer than the startup
    /// budget.
    pub async fn wait_until_ok(&self) -> Result<(), LocalRedisError> {
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        let mut last = String::new();
        loop {
            let mut all_ok = true;
            for node in &self.nodes {
                last = node.cluster_info().await.unwrap_or_else(|e| e.to_string());
                if !last.contains("cluster_state:ok") {
                    all_ok = false;
                    break;
                }
            }
            if all_ok {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LocalRedisError::ClusterNotReady {
                    timeout: STARTUP_TIMEOUT,
                    info: last,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The nodes, in the order they were started.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// A node, to stop or restart it (it rejoins with the same identity and slots).
    pub fn node_mut(&mut self, index: usize) -> Option<&mut RedisServer> {
        self.nodes.get_mut(index)
    }

    /// Every node's URL, comma-separated, as `REDIS_URL` takes them.
    pub fn url(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(RedisServer::url).collect();
        urls.join(",")
    }
}

impl RedisServer {
    /// `CLUSTER INFO` of this node, over a fresh connection.
    async fn cluster_info(&self) -> Result<String, redis::RedisError> {
        let client = self
            .client()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut conn)
            .await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// On Linux, asks the kernel to SIGKILL the child when this process dies, so a killed dev
/// server or test binary leaves no `redis-server` behind.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    #[expect(
        unsafe_code,
        reason = "prctl in pre_exec is the only way to set PDEATHSIG"
    )]
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}
