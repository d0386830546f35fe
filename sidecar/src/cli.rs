//! The command line: clap derive, doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The maintenance tool for an MHM root: log archival, verified backups, safe restore.
///
/// Exit codes: 0 done, 1 failed or problems found, 2 bad usage or settings, 3 locked.
#[derive(Debug, Parser)]
#[command(name = "mhm-sidecar", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct Global {
    /// The MHM root (default: MHM_ROOT, else the current directory).
    #[arg(long, global = true, env = "MHM_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Run as if it were this time (RFC 3339, e.g. 2026-11-26T02:00:00+01:00).
    #[arg(long, global = true, env = "MHM_NOW", value_name = "RFC3339")]
    pub now: Option<String>,
    /// Print results as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Show what would change; change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log archival: compress, move and prune rotated copies; read a log's history.
    #[command(subcommand)]
    Logs(LogsCommand),
    /// User-data backups: create, verify, list, prune, restore.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Checks on the MHM root.
    #[command(subcommand)]
    System(SystemCommand),
    /// Run what is due and nothing else: the 01:00 weekly backup check (prune after a
    /// backup), 02:00 log archival, message archiving every 30 days, and the 03:00 push of
    /// new backups off-site when MHM_REMOTE_URL is set. For a scheduler to call as often as
    /// it likes (`schedule install`); --dry-run says what each due job would do, and every
    /// row when the job is next due.
    Maintain,
    /// Backups, logs, last job runs and warnings at a glance.
    Status,
    /// Message archives: move old sent messages into archive files.
    #[command(subcommand)]
    Messages(MessagesCommand),
    /// Versioned tool outputs: rotate a file into numbered versions, save tool results.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Project snapshots: code (and optionally data) in a verified zip or folder.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Off-site copies: encrypted backups in S3-compatible storage or another folder.
    Remote(RemoteArgs),
    /// Build a realistic MHM root in DIR (users, two years of messages, 30 days of logs
    /// written through mhm-log), then run `maintain` and `status` on it.
    Demo(DemoArgs),
    /// Put `maintain` in this machine's scheduler, hourly, as you (a systemd user timer,
    /// a crontab line, or a Windows Task Scheduler task); show or remove it.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Print the completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the manual page (roff), for `man -l -` or a man folder.
    Man,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Install (or replace) the hourly `maintain` of this root; --dry-run prints it.
    Install,
    /// Print what is installed for this root (exit 1 when nothing is).
    Show,
    /// Remove this root's entry (nothing to remove is no error).
    Remove,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to build it: a new or empty folder, or one an earlier demo made.
    #[arg(default_value = "mhm-demo")]
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Gzip copies 7 days old or older into archive/, apply the overflow rule, delete
    /// archive copies beyond LOG_ARCHIVE_COUNT or older than LOG_ARCHIVE_MAX_AGE_DAYS.
    Archive(LogDirs),
    /// Each log: active size, copies in backups/ and archive/, oldest and newest date.
    List(LogDirs),
    /// Print a log's whole history in order: archive, backups, then the active file.
    Cat(CatArgs),
    /// Write a copy (decompressed) to logs/<name>.log.restored[.N]; never overwrites.
    Restore(LogRestoreArgs),
}

#[derive(Debug, Args)]
pub struct LogDirs {
    /// Another log folder to work on besides <root>/logs (relative to the root); repeatable.
    #[arg(long = "dir", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// The log: `app` or `app.log`.
    pub name: String,
    /// Only copies dated on or after this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only copies dated on or before this day (YYYY-MM-DD); the active file counts as today.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// The log folder (default: <root>/logs).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LogRestoreArgs {
    /// A copy: a path, or a file name found in backups/ or archive/.
    pub copy: String,
    /// The log folder (default: <root>/logs).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write a verified backup zip to data/backups/.
    Create(CreateArgs),
    /// Create a weekly backup (users + config) when the newest weekly one is 7 days old.
    Weekly,
    /// List the backups in data/backups/.
    List,
    /// Check a backup: every entry's CRC and digest, and the manifest.
    Verify(TargetArgs),
    /// Delete backups beyond BACKUP_RETENTION_DAYS or BACKUP_MAX_COUNT per kind.
    Prune(PruneArgs),
    /// Restore users and/or config from a backup, with a safety backup and rollback.
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The backup's name (default: mhm_backup_YYYYMMDD_HHMMSS).
    #[arg(long)]
    pub name: Option<String>,
    /// Also store logs/*.log.
    #[arg(long)]
    pub include_logs: bool,
    /// Also store the project's files (as .gitignore rules select them) under code/.
    #[arg(long)]
    pub include_code: bool,
    /// Leave data/users out.
    #[arg(long)]
    pub no_users: bool,
    /// Leave the config files out.
    #[arg(long)]
    pub no_config: bool,
    /// `zip` (default) or `directory`: a folder in the service's own shape, which its
    /// BackupManager lists and restores, with digests (default: BACKUP_FORMAT, else zip).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// A backup: a name in data/backups/ (with or without .zip), or a path.
    pub backup: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete backups this many days old or older (default: BACKUP_RETENTION_DAYS, 30).
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<u64>,
    /// Keep at most this many backups of each kind (default: BACKUP_MAX_COUNT, 10).
    #[arg(long, value_name = "N")]
    pub max_count: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A backup: a name in data/backups/ (with or without .zip), or a path (`backup list`
    /// shows them).
    pub backup: Option<String>,
    /// Restore the users folder (the default when neither --users nor --config is given).
    #[arg(long)]
    pub users: bool,
    /// Restore the config files to their original places.
    #[arg(long)]
    pub config: bool,
    /// Restore only this user's folder.
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Check data/user_index.json, the user folders and every JSON file under data/users.
    Validate,
}

impl Command {
    /// Whether the command changes files (and so takes the lock), given `--dry-run`.
    pub fn changes_files(&self, dry_run: bool) -> bool {
        if dry_run {
            return false;
        }
        match self {
            Command::Logs(c) => matches!(c, LogsCommand::Archive(_) | LogsCommand::Restore(_)),
            Command::Backup(c) => !matches!(c, BackupCommand::List | BackupCommand::Verify(_)),
            // The demo builds its own root and runs the real binary on it (which locks it).
            Command::System(_) | Command::Status | Command::Demo(_) => false,
            // Its files are the scheduler's, outside the root: no lock, no log.
            Command::Schedule(_) | Command::Completions(_) | Command::Man => false,
            Command::Maintain => true,
            Command::Messages(c) => c.changes_files(),
            Command::Tools(c) => c.changes_files(),
            Command::Snapshot(c) => c.changes_files(),
            Command::Remote(r) => r.command.changes_files(),
        }
    }
}

// === messages, tools, snapshot ===

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// Move messages older than --days (365) from each user's sent_messages.json into
    /// messages/archives/sent_messages_archive_YYYYMMDD_HHMMSS.json, then delete archive
    /// files older than MESSAGE_ARCHIVE_RETENTION_DAYS (90; 0 keeps them forever).
    Archive(ArchiveArgs),
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// Only this user (a folder name under data/users).
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
    /// Archive messages this many days old or older.
    #[arg(long, value_name = "N", default_value_t = mhm_sidecar::messages::DEFAULT_DAYS)]
    pub days: u32,
}

impl MessagesCommand {
    /// Whether the command changes files (outside `--dry-run`).
    pub fn changes_files(&self) -> bool {
        match self {
            MessagesCommand::Archive(_) => true,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Move FILE to the archive folder as <stem>_<YYYY-MM-DD_HHMMSS>_<NNNN><ext> and keep
    /// the newest --keep versions of that file.
    Rotate(RotateArgs),
    /// Write development_tools/<DOMAIN>/jsons/<TOOL>_results.json (the previous one kept
    /// as a version in jsons/archive/).
    SaveResult(SaveResultArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The file to rotate (relative to the current directory).
    pub file: PathBuf,
    /// Versions of this file to keep, the new one included.
    #[arg(long, value_name = "N", default_value_t = mhm_sidecar::tools::DEFAULT_KEEP)]
    pub keep: usize,
    /// Where versions go (default: archive/ beside FILE).
    #[arg(long, value_name = "DIR")]
    pub archive_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SaveResultArgs {
    /// The tool's name.
    pub tool: String,
    /// The domain folder under development_tools/.
    #[arg(long, value_name = "D")]
    pub domain: String,
    /// The result data, a JSON document: a file, or `-` for standard input (the default).
    #[arg(long, value_name = "FILE|-")]
    pub data: Option<PathBuf>,
    /// Versions of the previous results to keep.
    #[arg(long, value_name = "N", default_value_t = mhm_sidecar::tools::DEFAULT_KEEP)]
    pub keep: usize,
}

impl ToolsCommand {
    /// Whether the command changes files (outside `--dry-run`).
    pub fn changes_files(&self) -> bool {
        match self {
            ToolsCommand::Rotate(_) | ToolsCommand::SaveResult(_) => true,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write a verified DIR/mhm_snapshot_YYYYMMDD_HHMMSS.zip of the project's files.
    Create(SnapshotCreateArgs),
    /// List the snapshots in a folder.
    List(SnapshotDirArgs),
    /// Check a snapshot (zip or folder): every file's digest against the manifest.
    Verify(SnapshotVerifyArgs),
}

#[derive(Debug, Args)]
pub struct SnapshotCreateArgs {
    /// Where snapshots go (relative to the current directory); created when missing.
    #[arg(long, value_name = "DIR")]
    pub archive_dir: PathBuf,
    /// Also store data/ (data/backups/ always left out).
    #[arg(long)]
    pub include_user_data: bool,
    /// Write a folder instead of a zip.
    #[arg(long)]
    pub no_compress: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotDirArgs {
    /// The folder holding the snapshots.
    #[arg(long, value_name = "DIR")]
    pub archive_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct SnapshotVerifyArgs {
    /// The snapshot: a .zip file or a snapshot folder.
    pub path: PathBuf,
}

impl SnapshotCommand {
    /// Whether the command changes files (outside `--dry-run`).
    pub fn changes_files(&self) -> bool {
        matches!(self, SnapshotCommand::Create(_))
    }
}

impl Command {
    /// The command in words, for the sidecar's own log (`backup create`, `logs archive`).
    pub fn describe(&self) -> String {
        let sub = match self {
            Command::Logs(c) => match c {
                LogsCommand::Archive(_) => "archive",
                LogsCommand::List(_) => "list",
                LogsCommand::Cat(_) => "cat",
                LogsCommand::Restore(_) => "restore",
            },
            Command::Backup(c) => match c {
                BackupCommand::Create(_) => "create",
                BackupCommand::Weekly => "weekly",
                BackupCommand::List => "list",
                BackupCommand::Verify(_) => "verify",
                BackupCommand::Prune(_) => "prune",
                BackupCommand::Restore(_) => "restore",
            },
            Command::System(SystemCommand::Validate) => "validate",
            Command::Messages(MessagesCommand::Archive(_)) => "archive",
            Command::Tools(ToolsCommand::Rotate(_)) => "rotate",
            Command::Tools(ToolsCommand::SaveResult(_)) => "save-result",
            Command::Snapshot(c) => match c {
                SnapshotCommand::Create(_) => "create",
                SnapshotCommand::List(_) => "list",
                SnapshotCommand::Verify(_) => "verify",
            },
            Command::Remote(r) => r.command.name(),
            Command::Schedule(c) => match c {
                ScheduleCommand::Install => "install",
                ScheduleCommand::Show => "show",
                ScheduleCommand::Remove => "remove",
            },
            Command::Maintain
            | Command::Status
            | Command::Demo(_)
            | Command::Completions(_)
            | Command::Man => "",
        };
        let top = match self {
            Command::Logs(_) => "logs",
            Command::Backup(_) => "backup",
            Command::System(_) => "system",
            Command::Maintain => "maintain",
            Command::Status => "status",
            Command::Messages(_) => "messages",
            Command::Tools(_) => "tools",
            Command::Snapshot(_) => "snapshot",
            Command::Demo(_) => "demo",
            Command::Remote(_) => "remote",
            Command::Schedule(_) => "schedule",
            Command::Completions(_) => "completions",
            Command::Man => "man",
        };
        if sub.is_empty() {
            top.to_string()
        } else {
            format!("{top} {sub}")
        }
    }
}

// === remote ===

#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Where copies go: s3://bucket/prefix or file:///path (default: MHM_REMOTE_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    #[command(subcommand)]
    pub command: RemoteCommand,
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Verify, encrypt and upload local backups (none named: every valid one not there yet).
    Push(RemotePushArgs),
    /// The copies in the store.
    List,
    /// Download a copy, decrypt it and check every entry against its manifest.
    Verify(RemoteNameArgs),
    /// Download, decrypt and check a copy, then place it in data/backups/ (never over a file).
    Pull(RemoteNameArgs),
    /// Delete copies beyond REMOTE_RETENTION_DAYS or REMOTE_MAX_COUNT per kind.
    Prune(RemotePruneArgs),
    /// Write a new private key to FILE (owner-only, never over a file); print its public key.
    Keygen(KeygenArgs),
    /// After losing the machine: on an empty or missing root, pull the newest whole copy
    /// holding user data (or NAME), restore users, index, config and message archives, and
    /// run `system validate`.
    Restore(RemoteRestoreArgs),
}

#[derive(Debug, Args)]
pub struct RemoteRestoreArgs {
    /// The copy's backup name (default: the newest whole copy holding user data).
    pub name: Option<String>,
    /// The age private key file (default: MHM_REMOTE_IDENTITY_FILE).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RemotePushArgs {
    /// Backups in data/backups/ (with or without .zip).
    pub names: Vec<String>,
    /// The age public key to encrypt to (default: MHM_REMOTE_RECIPIENT).
    #[arg(long, value_name = "AGE1...")]
    pub recipient: Option<String>,
    /// Upload without encrypting (the store sees everything, .env included).
    #[arg(long)]
    pub no_encrypt: bool,
}

#[derive(Debug, Args)]
pub struct RemoteNameArgs {
    /// The copy's backup name.
    pub name: String,
    /// The age private key file (default: MHM_REMOTE_IDENTITY_FILE).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RemotePruneArgs {
    /// Delete copies this many days old or older (default: REMOTE_RETENTION_DAYS, 90).
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<u64>,
    /// Keep at most this many copies of each kind (default: REMOTE_MAX_COUNT, 20).
    #[arg(long, value_name = "N")]
    pub max_count: Option<u64>,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where the private key goes (relative to the current directory).
    pub file: PathBuf,
}

impl RemoteCommand {
    /// Whether the command changes files (outside `--dry-run`): everything that writes
    /// to the store or to data/backups/ holds the lock. `list` and `verify` are read-only
    /// (verify checks the copy in a private folder outside the root); `keygen` writes
    /// outside the root.
    pub fn changes_files(&self) -> bool {
        !matches!(self, RemoteCommand::List | RemoteCommand::Verify(_) | RemoteCommand::Keygen(_))
    }

    /// The subcommand's name.
    pub fn name(&self) -> &'static str {
        match self {
            RemoteCommand::Push(_) => "push",
            RemoteCommand::List => "list",
            RemoteCommand::Verify(_) => "verify",
            RemoteCommand::Pull(_) => "pull",
            RemoteCommand::Restore(_) => "restore",
            RemoteCommand::Prune(_) => "prune",
            RemoteCommand::Keygen(_) => "keygen",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_after_the_subcommand() {
        let cli =
            Cli::try_parse_from(["mhm-sidecar", "logs", "list", "--json", "--root", "/x"]).unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.root.as_deref(), Some(std::path::Path::new("/x")));
    }
}
