//! Links the C peers (feature `c-peers`) through pkg-config; does nothing
//! without the feature.

use std::process::{exit, Command};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if std::env::var_os("CARGO_FEATURE_C_PEERS").is_none() {
        return;
    }
    // GLib is linked by glib-sys.
    for pkg in ["libevent", "libevent_pthreads", "libsystemd"] {
        let out = Command::new("pkg-config").args(["--libs", pkg]).output();
        let out = match out {
            Ok(o) if o.status.success() => o,
            Ok(o) => {
                eprintln!(
                    "fdloop-bench: feature c-peers needs the C library {pkg}, which pkg-config \
                     cannot find ({}); on Debian: apt-get install pkg-config libglib2.0-dev \
                     libevent-dev libsystemd-dev",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                exit(1);
            }
            Err(e) => {
                eprintln!(
                    "fdloop-bench: feature c-peers needs pkg-config ({e}); on Debian: \
                     apt-get install pkg-config libglib2.0-dev libevent-dev libsystemd-dev"
                );
                exit(1);
            }
        };
        for flag in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Some(dir) = flag.strip_prefix("-L") {
                println!("cargo:rustc-link-search=native={dir}");
            } else if let Some(lib) = flag.strip_prefix("-l") {
                println!("cargo:rustc-link-lib={lib}");
            }
        }
    }
}
