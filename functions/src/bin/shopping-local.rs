//! `shopping-local`: run the Shopping API on a laptop, no cloud needed.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// mimalloc, not glibc's malloc: per-thread heaps without arena locks (BENCHMARKS.md, "Local
/// load"). Its arenas are committed as they are used ([`lazy_arenas`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "shopping-local", about = "The Shopping API on one local server over an embedded store")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every resource group on one HTTP server.
    Serve {
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: String,
        #[arg(long, default_value = "./.shopping")]
        data_dir: PathBuf,
        /// Allow webhook deliveries to loopback addresses (for local receivers).
        #[arg(long)]
        webhook_allow_loopback: bool,
        /// Seconds a request head may take to arrive, counted from when the server starts
        /// waiting for it; then the connection is closed.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        header_timeout: u64,
        /// Seconds a request body may pause between two reads; then the request is answered
        /// 408 and not applied.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        body_timeout: u64,
        /// Seconds a connection may stay silent with no request in progress; then it is closed.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
        idle_timeout: u64,
        /// Open connections at most; beyond it new connections wait for one to close.
        #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        max_connections: u64,
        /// Threads answering requests (default: one per CPU). The store's committer and
        /// checkpointer run on threads of their own.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
        workers: Option<u16>,
        /// MiB of rendered `GET` order answers kept in memory while the order is unchanged
        /// (0: none; every answer is read and rendered afresh).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(0..=1024))]
        answers_mib: u64,
    },
    /// Manage API clients (client credentials for `POST /v1/accounts/{aid}/auth/token`).
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Per-account request limits (overrides of the stack's TENANT_RATE_LIMIT/TENANT_BURST_LIMIT).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Print the OpenAPI document (what the server serves at `/openapi.json`).
    Openapi,
    /// Check a deployed stack end to end (AWS credentials and region from the environment):
    /// one line per check, then `smoke: N passed, M failed`; exits non-zero on a failure.
    Smoke {
        /// The CloudFormation stack's name; its outputs give the API, the table and the bus.
        #[arg(long)]
        stack: String,
        /// The API's base URL (default: the stack's ApiUrl output).
        #[arg(long)]
        url: Option<String>,
        /// The table (default: the stack's TableName output).
        #[arg(long)]
        table: Option<String>,
        /// The event bus, by name or ARN (default: the stack's EventBusName output).
        #[arg(long)]
        bus: Option<String>,
        /// The account the temporary client, drafts and orders belong to: one no merchant has.
        #[arg(long, default_value = functions::platform::smoke::SMOKE_ACCOUNT)]
        account: String,
        /// Who makes the temporary client, for the audit trail (default: the login name).
        #[arg(long)]
        by: Option<String>,
    },
    /// Print a bearer token that a server on the same data dir accepts.
    Token {
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "admin:shopping")]
        scopes: String,
        #[arg(long, default_value_t = 3600)]
        expires_in: i64,
        #[arg(long, default_value = "./.shopping")]
        data_dir: PathBuf,
    },
}

/// Where API clients live: a data dir's embedded store, or a deployed stack's table.
#[derive(clap::Args)]
struct Where {
    /// The local server's data dir (the default: ./.shopping).
    #[arg(long, conflicts_with = "table")]
    data_dir: Option<PathBuf>,
    /// A deployed stack's DynamoDB table (its TableName output), reached with the AWS
    /// credentials and region in the environment.
    #[arg(long)]
    table: Option<String>,
    /// Who makes the change, for the audit trail (default: the login name).
    #[arg(long)]
    by: Option<String>,
}

impl Where {
    fn target(&self) -> functions::platform::operator::Target {
        use functions::platform::operator::Target;
        match (&self.table, &self.data_dir) {
            (Some(table), _) => Target::Table(table.clone()),
            (None, dir) => Target::DataDir(dir.clone().unwrap_or_else(|| PathBuf::from("./.shopping"))),
        }
    }

    fn by(&self) -> String {
        login(self.by.clone())
    }
}

/// `given`, else the login name.
fn login(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Create a client; prints its id and secret (the secret is shown only this once).
    Create {
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "admin:shopping")]
        scopes: String,
        #[command(flatten)]
        at: Where,
    },
    /// List the clients (revoked ones included): id, account, status, scopes, dates.
    List {
        #[command(flatten)]
        at: Where,
    },
    /// Give a client a new secret (printed once); the old one stops working at once.
    Rotate {
        client_id: String,
        #[command(flatten)]
        at: Where,
    },
    /// Revoke a client: the token endpoint refuses it from now on.
    Revoke {
        client_id: String,
        #[command(flatten)]
        at: Where,
    },
    /// Print the audit trail of every change to clients.
    Audit {
        #[command(flatten)]
        at: Where,
    },
    /// Remove the legacy secret-hashing key once no client needs it (clients made before
    /// secrets were hashed unkeyed rehash on their next token).
    Migrate {
        #[command(flatten)]
        at: Where,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Set an account's limit: `rate` requests a second, bursts of `burst`; running servers
    /// and functions take it within seconds, no restart.
    Limit {
        #[arg(long)]
        account: String,
        #[arg(long)]
        rate: u32,
        #[arg(long)]
        burst: u32,
        #[command(flatten)]
        at: Where,
    },
    /// List the accounts' overrides and the default (or one account's limit).
    Show {
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        at: Where,
    },
}

/// mimalloc commits a new arena whole by default on Linux (`arena_eager_commit`), which took
/// `shopping-local`'s peak resident memory from 20 to 35–40 MiB under load; committed as used,
/// it stays near glibc's figure (BENCHMARKS.md, "Local load"). mimalloc reads its options in
/// its own constructor, before `main` (priority 101 when built by clang, after every
/// prioritised one when built by gcc): this one, at priority 100, runs ahead of it either way.
/// It sets the default only, so `MIMALLOC_ARENA_EAGER_COMMIT` still overrides it.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array.00100"]
static LAZY_ARENAS: extern "C" fn() = lazy_arenas;

/// (Elsewhere mimalloc commits arenas as used already: its default commits eagerly only
/// where the OS overcommits.)
#[cfg(target_os = "linux")]
extern "C" fn lazy_arenas() {
    /// `mi_option_arena_eager_commit` in mimalloc.h's `mi_option_e` (the same in v2 and v3;
    /// libmimalloc-sys names no constant for it).
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // SAFETY: sets a process-wide allocator option before any thread or allocation exists.
    unsafe { libmimalloc_sys::mi_option_set_default(ARENA_EAGER_COMMIT, 0) };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workers = match &cli.command {
        Command::Serve { workers, .. } => workers.map(usize::from),
        _ => None,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        runtime.worker_threads(n);
    }
    let runtime = runtime.enable_all().build();
    match runtime {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            eprintln!("shopping-local: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve {
            addr,
            data_dir,
            webhook_allow_loopback,
            header_timeout,
            body_timeout,
            idle_timeout,
            max_connections,
            workers: _,
            answers_mib,
        } => {
            let text = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .finish();
            let _ = text.with(functions::platform::lambda::log_filter()).try_init();
            if webhook_allow_loopback {
                tracing::warn!("webhook deliveries to loopback addresses are allowed");
            }
            let limits = functions::platform::listener::Limits {
                header_timeout: std::time::Duration::from_secs(header_timeout),
                body_timeout: std::time::Duration::from_secs(body_timeout),
                idle_timeout: std::time::Duration::from_secs(idle_timeout),
                max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
            };
            let answers_bytes = usize::try_from(answers_mib).unwrap_or(usize::MAX).saturating_mul(1 << 20);
            functions::platform::local::serve(&addr, &data_dir, webhook_allow_loopback, limits, answers_bytes).await
        }
        Command::Openapi => {
            print!("{}", functions::api::openapi::json());
            return ExitCode::SUCCESS;
        }
        Command::Tenant { command } => {
            use functions::platform::operator::Action;
            let (action, at) = match command {
                TenantCommand::Limit { account, rate, burst, at } => (Action::TenantLimit { account, rate, burst }, at),
                TenantCommand::Show { account, at } => (Action::TenantShow { account }, at),
            };
            let account = match &action {
                Action::TenantLimit { account, .. } | Action::TenantShow { account: Some(account) } => Some(account),
                _ => None,
            };
            if account.is_some_and(|a| !domain::validate::is_account_id(a)) {
                eprintln!("shopping-local: --account must match ^[PT]\\d{{8}}$, e.g. T12345678");
                return ExitCode::from(2);
            }
            return operate(&at, action).await;
        }
        Command::Client { command } => {
            use functions::platform::operator::Action;
            let (action, at) = match command {
                ClientCommand::Create { account, scopes, at } => {
                    if !domain::validate::is_account_id(&account) {
                        eprintln!("shopping-local: --account must match ^[PT]\\d{{8}}$, e.g. T12345678");
                        return ExitCode::from(2);
                    }
                    (Action::Create { account, scopes }, at)
                }
                ClientCommand::List { at } => (Action::List, at),
                ClientCommand::Rotate { client_id, at } => (Action::Rotate { client_id }, at),
                ClientCommand::Revoke { client_id, at } => (Action::Revoke { client_id }, at),
                ClientCommand::Audit { at } => (Action::Audit, at),
                ClientCommand::Migrate { at } => (Action::Migrate, at),
            };
            return operate(&at, action).await;
        }
        Command::Smoke { stack, url, table, bus, account, by } => {
            if !domain::validate::is_account_id(&account) {
                eprintln!("shopping-local: --account must match ^[PT]\\d{{8}}$, e.g. T00000000");
                return ExitCode::from(2);
            }
            let by = format!("{} (smoke)", login(by));
            let options = functions::platform::smoke::Options { stack, url, table, bus, account, by };
            return match functions::platform::smoke::run(options).await {
                Ok(summary) if summary.interrupted => ExitCode::from(130),
                Ok(summary) if summary.failed > 0 => ExitCode::FAILURE,
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("shopping-local: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Token { account, scopes, expires_in, data_dir } => {
            if !domain::validate::is_account_id(&account) {
                eprintln!("shopping-local: --account must match ^[PT]\\d{{8}}$, e.g. T12345678");
                return ExitCode::from(2);
            }
            functions::platform::local::token(&data_dir, &account, &scopes, expires_in).map(|t| println!("{t}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shopping-local: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an operator's action and prints its lines.
async fn operate(at: &Where, action: functions::platform::operator::Action) -> ExitCode {
    match functions::platform::operator::run(&at.target(), action, &at.by()).await {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shopping-local: {e}");
            ExitCode::FAILURE
        }
    }
}
