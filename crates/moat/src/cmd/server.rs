//! `moat server`: the security center (store, API), and `moat server token create|list|revoke`.

use std::net::SocketAddr;
use std::path::PathBuf;

use moat_report::Verdict;
use moat_server::store::{Scope, Store};
use moat_server::{Role, ServerConfig};

use crate::common::InputError;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Sub>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// API tokens (stored as SHA-256 hashes; a secret is printed once).
    Token(TokenArgs),
}

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenSub,
}

#[derive(clap::Subcommand, Debug)]
pub enum TokenSub {
    /// Create a token and print its secret (once).
    Create {
        /// Scopes: ingest, read, admin (comma-separated or repeated).
        #[arg(long, value_name = "SCOPE[,SCOPE]", required = true)]
        scope: Vec<String>,
        /// A name to recognise it by.
        #[arg(long, default_value = "cli")]
        name: String,
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// Revoke a token by id.
    Revoke {
        id: String,
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The store: sqlite:PATH (default: $XDG_DATA_HOME/moat/server.db) or postgres://USER@HOST:PORT/DB.
    #[arg(long, value_name = "URL", env = "MOAT_SERVER_STORE")]
    pub store: Option<String>,
    /// The vulnerability database directory SBOMs are matched against (default: moat db's).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// api (HTTP only), worker (jobs only) or all.
    #[arg(long, default_value = "all")]
    pub role: String,
    /// Serving certificate (PEM); with --tls-key, the server speaks HTTPS only.
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Server configuration (YAML: gate policy, alert rules).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A bootstrap token (admin+ingest+read) registered at start, for unattended deployments: the file's
    /// first line is the secret (at least 16 characters). MOAT_SERVER_TOKEN does the same from the environment.
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Largest request body in bytes (413 beyond).
    #[arg(long = "max-body-bytes", default_value_t = 64 << 20)]
    pub max_body_bytes: usize,
    /// Scan workers in this process (pushed images scanned at once; default: `scan.workers` of
    /// --config, else 2). Jobs wait in the store's queue, so a burst of pushes queues, never drops.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

fn store_url(s: Option<String>) -> String {
    s.unwrap_or_else(moat_server::store::default_url)
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    InputError(e.to_string()).into()
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    match a.command {
        Some(Sub::Token(t)) => token(t),
        None => serve(a.serve),
    }
}

fn token(t: TokenArgs) -> anyhow::Result<Verdict> {
    moat_server::block_on(async move {
        match t.command {
            TokenSub::Create { scope, name, store } => {
                let scopes = Scope::parse_list(&scope.join(",")).map_err(err)?;
                let st = Store::connect(&store_url(store)).await.map_err(err)?;
                let (info, secret) = st.create_token(&name, &scopes).await.map_err(err)?;
                eprintln!(
                    "token {} ({}) created with scopes {}; the secret below is shown only once:",
                    info.id,
                    info.name,
                    scope.join(",")
                );
                println!("{secret}");
            }
            TokenSub::List { store } => {
                let st = Store::connect(&store_url(store)).await.map_err(err)?;
                for (info, created, revoked) in st.list_tokens().await.map_err(err)? {
                    let scopes: Vec<&str> = info.scopes.iter().map(|s| s.as_str()).collect();
                    println!(
                        "{}\t{}\t{}\tcreated_ms={created}{}",
                        info.id,
                        info.name,
                        scopes.join(","),
                        revoked
                            .map(|r| format!("\trevoked_ms={r}"))
                            .unwrap_or_default()
                    );
                }
            }
            TokenSub::Revoke { id, store } => {
                let st = Store::connect(&store_url(store)).await.map_err(err)?;
                if !st.revoke_token(&id).await.map_err(err)? {
                    return Err(err(format!("no active token {id}")));
                }
                eprintln!("token {id} revoked");
            }
        }
        Ok(Verdict::Pass)
    })
    .map_err(err)?
}

fn serve(a: ServeArgs) -> anyhow::Result<Verdict> {
    let role = Role::parse(&a.role)
        .ok_or_else(|| err(format!("--role {:?}: expected api, worker or all", a.role)))?;
    if a.max_body_bytes == 0 {
        return Err(err("--max-body-bytes must be at least 1"));
    }
    let bootstrap = match (&a.token_file, std::env::var("MOAT_SERVER_TOKEN").ok()) {
        (Some(f), _) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| err(format!("{}: {e}", f.display())))?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
        ),
        (None, Some(t)) if !t.trim().is_empty() => Some(t.trim().to_string()),
        _ => None,
    };
    let mut cfg = ServerConfig::new(
        a.listen,
        store_url(a.store),
        a.db.unwrap_or_else(moat_vulndb::store::default_dir),
    );
    cfg.role = role;
    cfg.max_body_bytes = a.max_body_bytes;
    cfg.config_file = a.config;
    if let Some(n) = a.workers {
        if n == 0 || n > 256 {
            return Err(err(format!("--workers must be between 1 and 256, not {n}")));
        }
        cfg.workers = Some(n);
    }
    if let (Some(c), Some(k)) = (a.tls_cert, a.tls_key) {
        cfg.tls = Some((c, k));
    }
    let listen = cfg.listen;
    let store = cfg.store_url.clone();
    moat_server::block_on(async move {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(moat_server::serve(cfg, bootstrap, Some(tx)));
        if let Ok(addr) = rx.await {
            let shown = store.split('@').next_back().unwrap_or(&store);
            eprintln!("moat server listening on {addr} (store {shown})");
        }
        match server.await {
            Ok(r) => r.map_err(err),
            Err(e) => Err(err(format!("server task: {e}"))),
        }
    })
    .map_err(err)??;
    let _ = listen;
    Ok(Verdict::Pass)
}
