//! `remote push | list | verify | pull | prune | keygen` (SPEC section 10).

use anyhow::Result;
use mhm_sidecar::{
    paths,
    remote::{self, Overrides, PushOptions, PushResult, Remote, Status},
};

use super::json::print_json;
use super::run::Run;
use crate::{
    cli::{RemoteArgs, RemoteCommand},
    exit_codes::ExitCode,
    out::{self, Table},
};

pub fn run(ctx: &Run, args: &RemoteArgs) -> Result<ExitCode> {
    let mut over = Overrides { url: args.url.clone(), ..Default::default() };
    match &args.command {
        RemoteCommand::Keygen(k) => keygen(ctx, &k.file),
        RemoteCommand::List => list(ctx, &Remote::open(ctx, &over)?),
        RemoteCommand::Push(p) => {
            over.recipient = p.recipient.clone();
            let opts =
                PushOptions { encrypt: !p.no_encrypt, dry_run: ctx.dry_run, ..Default::default() };
            push(ctx, &Remote::open(ctx, &over)?, &p.names, opts)
        }
        RemoteCommand::Verify(n) | RemoteCommand::Pull(n) => {
            over.identity_file = n.identity.clone();
            let remote = Remote::open(ctx, &over)?;
            let place = matches!(args.command, RemoteCommand::Pull(_));
            fetch(ctx, &remote, &n.name, place)
        }
        RemoteCommand::Restore(r) => {
            over.identity_file = r.identity.clone();
            restore(ctx, &Remote::open(ctx, &over)?, r.name.as_deref())
        }
        RemoteCommand::Prune(p) => {
            let policy = remote::prune_policy(ctx, p.retention_days, p.max_count)?;
            prune(ctx, &Remote::open(ctx, &over)?, policy)
        }
    }
}

fn keygen(ctx: &Run, file: &std::path::Path) -> Result<ExitCode> {
    if ctx.dry_run {
        // Nothing is made: a key made and thrown away would be of no use to anyone.
        if file.symlink_metadata().is_ok() {
            return Err(mhm_sidecar::error::usage(format!(
                "{} exists already; keygen never replaces a key",
                ctx.show(file)
            )));
        }
        if ctx.json {
            print_json(&serde_json::json!({"identity_file": ctx.show(file), "public_key": null}))?;
        } else {
            println!("would write a new age key pair: the private key to {}", ctx.show(file));
        }
        return Ok(ExitCode::Success);
    }
    let public = remote::keygen(ctx, file)?;
    if ctx.json {
        print_json(&serde_json::json!({"identity_file": ctx.show(file), "public_key": public}))?;
    } else {
        println!("{public}");
    }
    eprintln!(
        "wrote the private key to {} (owner-only). Keep a copy off this machine: without it no copy can be read back.\nPut the public key above in MHM_REMOTE_RECIPIENT, and the file's path in MHM_REMOTE_IDENTITY_FILE where copies are verified or pulled.",
        ctx.show(file)
    );
    tracing::info!(target: "mhm::sidecar", "remote keygen: wrote a new private key to {}", ctx.show(file));
    Ok(ExitCode::Success)
}

fn list(ctx: &Run, remote: &Remote) -> Result<ExitCode> {
    let listing = remote.list()?;
    for u in &listing.unfinished {
        eprintln!("note: {} ({} bytes) is {}", u.object, u.size, u.why);
    }
    if ctx.json {
        print_json(&listing)?;
        return Ok(ExitCode::Success);
    }
    let mut table = Table::new(&[
        "name",
        "kind",
        "created",
        "pushed",
        ">size",
        ">stored",
        "encrypted",
        "status",
    ]);
    for c in &listing.copies {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Missing => "MISSING",
            Status::Changed => "CHANGED",
        };
        table.row(vec![
            paths::printable(&c.name).into_owned(),
            format!("{:?}", c.kind).to_lowercase(),
            out::time(&c.created_at),
            out::time(&c.pushed_at),
            out::size(c.size),
            out::size(c.stored_size),
            if c.encrypted { "yes" } else { "NO" }.into(),
            status.into(),
        ]);
    }
    if listing.copies.is_empty() {
        println!("no copies in {}", remote.config().describe());
    } else {
        table.print();
    }
    Ok(ExitCode::Success)
}

fn push(ctx: &Run, remote: &Remote, names: &[String], opts: PushOptions) -> Result<ExitCode> {
    if !opts.encrypt {
        eprintln!(
            "warning: --no-encrypt: the store will hold the backups as they are, .env included"
        );
    }
    let items = remote.push(ctx, names, opts)?;
    if ctx.json {
        print_json(&items)?;
    } else {
        for i in &items {
            match &i.result {
                PushResult::Pushed { stored_size, encrypted, confirmed_by, seconds } => println!(
                    "pushed {} ({stored_size} bytes{}, confirmed by {confirmed_by}, {seconds:.1} s)",
                    i.name,
                    if *encrypted { ", encrypted" } else { ", NOT encrypted" }
                ),
                PushResult::AlreadyThere => println!("already there {}", i.name),
                PushResult::WouldPush => println!("would push {}", i.name),
                PushResult::Refused { problems } => {
                    println!("REFUSED {}: the local backup does not verify", i.name);
                    for p in problems {
                        println!("  {p}");
                    }
                }
                PushResult::Failed { error } => println!("FAILED {}: {error}", i.name),
                PushResult::Skipped { why } => println!("skipped {}: {why}", i.name),
            }
        }
        if items.is_empty() {
            println!("no backups to push");
        }
    }
    Ok(ExitCode::from_ok(items.iter().all(|i| i.ok())))
}

fn fetch(ctx: &Run, remote: &Remote, name: &str, place: bool) -> Result<ExitCode> {
    if place && ctx.dry_run {
        // A pull changes only data/backups/; a dry run checks the copy and keeps nothing.
        eprintln!("dry run: the copy is checked, nothing is placed");
    }
    let report =
        if place && !ctx.dry_run { remote.pull(ctx, name)? } else { remote.verify(ctx, name)? };
    if ctx.json {
        print_json(&report)?;
    } else if report.ok() {
        match &report.placed {
            Some(p) => {
                println!("pulled {} to {p} (valid, {} entries)", report.name, report.entries)
            }
            None => println!("{}: the copy is valid ({} entries)", report.name, report.entries),
        }
    } else {
        println!("{}: the copy is INVALID, {} problem(s):", report.name, report.problems.len());
        for p in &report.problems {
            println!("  {p}");
        }
        if place {
            println!("nothing was placed in data/backups/");
        }
    }
    Ok(ExitCode::from_ok(report.ok()))
}

fn prune(ctx: &Run, remote: &Remote, policy: remote::PrunePolicy) -> Result<ExitCode> {
    let steps = remote.prune(ctx, policy, ctx.dry_run)?;
    super::backup::print_prune(ctx, &steps)
}

fn restore(ctx: &Run, remote: &Remote, name: Option<&str>) -> Result<ExitCode> {
    if ctx.dry_run {
        return Err(mhm_sidecar::error::usage(
            "remote restore has no --dry-run: see `remote list` for the copies, and `remote \
             verify NAME` to check one",
        ));
    }
    let done = remote.restore_all(ctx, name)?;
    if ctx.json {
        print_json(&done)?;
    } else {
        println!(
            "restored {} ({}): {} item(s) in place",
            done.name,
            if done.pulled { "pulled from the store" } else { "already pulled" },
            done.outcome.items.len()
        );
        for i in &done.outcome.items {
            println!("  {}", i.key);
        }
        if done.validate.ok() {
            println!("system validate: ok ({} user(s))", done.validate.users_listed);
        } else {
            println!("system validate: {} problem(s)", done.validate.problems.len());
            for p in &done.validate.problems {
                println!("  {p}");
            }
        }
    }
    Ok(ExitCode::from_ok(done.validate.ok()))
}
