//! Where the identity, the hub and the chain are (flags, environment, the
//! configuration file), and the contexts commands build from them.

#![allow(clippy::print_stdout)] // a command-line tool: results go to stdout

use std::path::PathBuf;

use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail};

/// Where the buyer's key and the hub are: flags, else environment, else
/// the configuration file.
#[derive(Debug, clap::Args)]
pub(crate) struct Identity {
    /// Configuration file (TOML: keystore, password_file, hub, deployment,
    /// chain_rpc); default $XDG_CONFIG_HOME/fog/config.toml or
    /// ~/.config/fog/config.toml when it exists.
    #[arg(long, env = "FOG_CONFIG", global = true)]
    pub(crate) config: Option<PathBuf>,
    /// The buyer's keystore (`fog key new`).
    #[arg(long, env = "FOG_KEYSTORE", global = true)]
    pub(crate) keystore: Option<PathBuf>,
    /// File holding the keystore password; else FOG_KEY_PASSWORD.
    #[arg(long, global = true)]
    pub(crate) password_file: Option<PathBuf>,
    /// The hub's URL.
    #[arg(long, env = "FOG_HUB_URL", global = true)]
    pub(crate) hub: Option<String>,
    /// The contracts' deployment file.
    #[arg(long, env = "FOG_DEPLOYMENT", global = true)]
    pub(crate) deployment: Option<PathBuf>,
    /// JSON-RPC endpoint of the chain.
    #[arg(long = "chain-rpc", env = "FOG_RPC_URL", global = true)]
    pub(crate) chain_rpc: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// Prints `value` as JSON with --json, else the text for people.
pub(crate) fn report(identity: &Identity, value: serde_json::Value, text: impl FnOnce() -> String) {
    if identity.json {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}

/// A spinner on stderr while something takes time: on a terminal only
/// (scripts and logs get plain lines from the callers), cleared when dropped.
pub(crate) struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    pub(crate) fn new(what: &str) -> Self {
        Self(
            std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} fog: {msg} ({elapsed})")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar.set_message(what.to_owned());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            }),
        )
    }

    /// A step: kept above the spinner on a terminal, one line otherwise.
    pub(crate) fn step(&self, step: &str) {
        match &self.0 {
            Some(bar) => {
                bar.println(format!("fog: {step}"));
                bar.set_message(step.to_owned());
            }
            None => eprintln!("fog: {step}"),
        }
    }

    /// Runs `write` with the spinner out of the way.
    pub(crate) fn suspend(&self, write: impl FnOnce()) {
        match &self.0 {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// The configuration file: what flags and environment variables leave unset.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub(crate) keystore: Option<PathBuf>,
    pub(crate) password_file: Option<PathBuf>,
    pub(crate) hub: Option<String>,
    pub(crate) deployment: Option<PathBuf>,
    pub(crate) chain_rpc: Option<String>,
}

impl Identity {
    /// Fills what flags and environment left unset from the configuration file.
    pub(crate) fn with_file_defaults(mut self) -> anyhow::Result<Self> {
        let path = match &self.config {
            Some(path) => path.clone(),
            None => match default_config_path() {
                Some(path) if path.is_file() => path,
                _ => return Ok(self),
            },
        };
        let file: FileConfig = config::Config::builder()
            .add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml))
            .build()
            .and_then(config::Config::try_deserialize)
            .with_context(|| format!("configuration file {}", path.display()))?;
        // Relative paths in the file are relative to the file.
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        let resolve = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        self.keystore = self.keystore.or(file.keystore.map(resolve));
        self.password_file = self.password_file.or(file.password_file.map(resolve));
        self.deployment = self.deployment.or(file.deployment.map(resolve));
        self.hub = self.hub.or(file.hub);
        self.chain_rpc = self.chain_rpc.or(file.chain_rpc);
        Ok(self)
    }
}

pub(crate) fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("fog/config.toml"))
}

pub(crate) fn password(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    Ok(fog_protocol::keys::read_password(file, "FOG_KEY_PASSWORD")?)
}

pub(crate) fn keystore(identity: &Identity) -> anyhow::Result<&std::path::Path> {
    identity
        .keystore
        .as_deref()
        .context("no key: pass --keystore PATH or set FOG_KEYSTORE (create one with `fog key new`)")
}

/// The identity's key (password from --password-file or FOG_KEY_PASSWORD).
pub(crate) fn provider_key(identity: &Identity) -> anyhow::Result<PrivateKeySigner> {
    Ok(fog_protocol::keys::open(
        keystore(identity)?,
        &password(identity.password_file.as_deref())?,
    )?)
}

/// The hub and chain a job command talks to, checked to be one deployment.
pub(crate) async fn chain_context(
    identity: &Identity,
    hub_url: &str,
    key: PrivateKeySigner,
) -> anyhow::Result<fog_cli::run::Context> {
    let (deployment_path, deployment, rpc) = deployment_and_rpc(identity)?;
    let info = fetch_hub_info(hub_url).await?;
    if info.chain_id != deployment.chain_id || info.escrow != deployment.escrow {
        bail!(
            "the hub at {hub_url} settles on chain {} with escrow {}, but {} is chain {} with escrow {}",
            info.chain_id,
            info.escrow,
            deployment_path.display(),
            deployment.chain_id,
            deployment.escrow
        );
    }
    Ok(fog_cli::run::Context::new(
        hub_url, info.hub, deployment, rpc, key,
    )?)
}

/// What `GET /v1/hub` says.
pub(crate) type HubInfo = fog_protocol::api::HubInfo;

pub(crate) async fn fetch_hub_info(hub_url: &str) -> anyhow::Result<HubInfo> {
    Ok(fog_cli::client::HubClient::new(hub_url).hub_info().await?)
}

/// The deployment file's path, its contents, and the chain's RPC URL.
pub(crate) fn deployment_and_rpc(
    identity: &Identity,
) -> anyhow::Result<(&std::path::Path, fog_protocol::deploy::Deployment, &str)> {
    let path = identity
        .deployment
        .as_deref()
        .context("no deployment: pass --deployment FILE or set FOG_DEPLOYMENT")?;
    let deployment = fog_protocol::deploy::Deployment::load(path)?;
    let rpc = identity
        .chain_rpc
        .as_deref()
        .context("no chain: pass --chain-rpc URL or set FOG_RPC_URL")?;
    Ok((path, deployment, rpc))
}

/// The deployment, a provider signing with the identity's key, and its address.
pub(crate) fn chain_only(
    identity: &Identity,
) -> anyhow::Result<(
    fog_protocol::deploy::Deployment,
    alloy::providers::DynProvider,
    fog_protocol::Address,
)> {
    let (_, deployment, rpc) = deployment_and_rpc(identity)?;
    let key = fog_protocol::keys::open(
        keystore(identity)?,
        &password(identity.password_file.as_deref())?,
    )?;
    let me = key.address();
    Ok((deployment, fog_cli::ops::signing_provider(rpc, key)?, me))
}

pub(crate) fn tokens(flag: &str, text: &str) -> anyhow::Result<fog_protocol::U256> {
    fog_cli::run::parse_tokens(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}
