//! `shopping-local`: run the Shopping API on a laptop, no cloud needed.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
    },
    /// Manage API clients (client credentials for `POST /v1/accounts/{aid}/auth/token`).
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Print the OpenAPI document (what the server serves at `/openapi.json`).
    Openapi,
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

#[derive(Subcommand)]
enum ClientCommand {
    /// Create a client; prints its id and secret (the secret is shown only this once).
    Create {
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "admin:shopping")]
        scopes: String,
        #[arg(long, default_value = "./.shopping")]
        data_dir: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { addr, data_dir, webhook_allow_loopback } => {
            let text = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .finish();
            let _ = text.with(functions::platform::lambda::log_filter()).try_init();
            if webhook_allow_loopback {
                tracing::warn!("webhook deliveries to loopback addresses are allowed");
            }
            functions::platform::local::serve(&addr, &data_dir, webhook_allow_loopback).await
        }
        Command::Openapi => {
            print!("{}", functions::api::openapi::json());
            return ExitCode::SUCCESS;
        }
        Command::Client { command: ClientCommand::Create { account, scopes, data_dir } } => {
            if !domain::validate::is_account_id(&account) {
                eprintln!("shopping-local: --account must match ^[PT]\\d{{8}}$, e.g. T12345678");
                return ExitCode::from(2);
            }
            functions::platform::local::create_client(&data_dir, &account, &scopes).await.map(|(id, secret)| {
                println!("client_id={id}");
                println!("client_secret={secret}");
            })
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
