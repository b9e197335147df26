//! `embed_migrations!("folder")`: the migrations of a folder read at
//! compile time. The `odm::embed_migrations!` macro forwards its one-folder
//! form here as `embed_dir!($crate, "folder")`, so the expansion names odm
//! by the path the user's crate knows it by.
//!
//! The folder is relative to the package being compiled
//! (`CARGO_MANIFEST_DIR`), as sqlx's `migrate!`. Every `.sql` file in it
//! (sorted by name) is embedded with `include_str!` of its absolute path,
//! so cargo rebuilds when one of them changes. A file *added* to the
//! folder is only noticed on the next rebuild of the crate: stable Rust
//! has no way for a macro to watch a folder (`proc_macro::tracked_path` is
//! unstable), so a crate that wants it adds a build script with
//! `println!("cargo:rerun-if-changed=migrations");`.

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{LitStr, Path as SynPath, Token};

/// `$crate, "folder"`.
pub(crate) struct EmbedDir {
    krate: SynPath,
    dir: LitStr,
}

impl Parse for EmbedDir {
    fn parse(input: ParseStream<'_>) -> syn::Result<EmbedDir> {
        let krate = input.parse()?;
        input.parse::<Token![,]>()?;
        let dir = input.parse()?;
        Ok(EmbedDir { krate, dir })
    }
}

/// `Migrations::from_files([(file, include_str!(abs path)), ...])`.
pub(crate) fn expand(input: EmbedDir) -> syn::Result<TokenStream> {
    let EmbedDir { krate, dir } = input;
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| {
            syn::Error::new(
                dir.span(),
                "CARGO_MANIFEST_DIR is not set: build with cargo",
            )
        })?;
    let folder = root.join(dir.value());
    let files = sql_files(&folder).map_err(|err| {
        syn::Error::new(
            dir.span(),
            format!(
                "cannot read the migrations folder {} (relative to the package root, \
                 CARGO_MANIFEST_DIR): {err}",
                folder.display()
            ),
        )
    })?;
    let entries = files.iter().map(|(name, path)| {
        let path = path.to_string_lossy();
        quote! { (#name, ::core::include_str!(#path)) }
    });
    Ok(quote! {
        #krate::migrate::Migrations::from_files([#(#entries),*])
    })
}

/// `(file name, absolute path)` of every `.sql` file of `folder`, by name.
fn sql_files(folder: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") || !path.is_file() {
            continue;
        }
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            files.push((name.to_owned(), path.clone()));
        }
    }
    files.sort();
    Ok(files)
}
