//! OCI image layouts on disk and the sink's layer.
//!
//! # Design
//!
//! `image build` writes a standard OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/*`) that any OCI tool can read (`skopeo inspect oci:DIR:TAG`), and that
//! `image push` uploads. The documents are `oci-spec`'s types; the directory handling is
//! ours (neither `oci-spec` nor `oci-client` reads or writes layouts). Blobs are
//! content-addressed and written atomically, so a rebuild re-uses base layers already
//! fetched. The sink layer is built reproducibly: entries in a fixed order, owner root,
//! fixed modification time (`SOURCE_DATE_EPOCH`, default 0), and gzip without a timestamp;
//! manifest and config are canonical JSON (sorted keys: `oci-spec` keeps annotations and
//! labels in hash maps) — the same binary gives the same digest.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use flate2::{write::GzEncoder, Compression};
use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageIndex, ImageIndexBuilder, MediaType, ANNOTATION_REF_NAME,
};
use serde::Serialize;

use super::registry::digest_of;
use crate::fsutil;

/// Where the sink binary and UI go inside the image.
pub const BINARY_PATH: &str = "usr/local/bin/tumbleweed-sink";
pub const UI_PATH: &str = "usr/share/tumbleweed/ui";

/// `value` as canonical JSON (sorted keys, no whitespace), the form whose digest is stable.
pub fn canonical_json(value: &impl Serialize) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
    value.serialize(&mut ser)?;
    Ok(out)
}

/// A descriptor of `size` bytes with `digest`.
pub fn descriptor(media_type: MediaType, digest: &str, size: usize) -> anyhow::Result<Descriptor> {
    Ok(DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest.parse::<oci_spec::image::Digest>()?)
        .size(size as u64)
        .build()?)
}

/// The tag an index entry carries (`org.opencontainers.image.ref.name`).
fn ref_name(desc: &Descriptor) -> Option<&str> {
    desc.annotations()
        .as_ref()?
        .get(ANNOTATION_REF_NAME)
        .map(String::as_str)
}

pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    /// Opens (creating if needed) a layout directory.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir.join("blobs/sha256"))
            .with_context(|| format!("creating {}", dir.display()))?;
        fsutil::write_atomic(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
            None,
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        if !dir.join("oci-layout").exists() {
            anyhow::bail!(
                "{} is not an OCI image layout (run `tumbleweed image build` first)",
                dir.display()
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn blob_path(&self, digest: &str) -> anyhow::Result<PathBuf> {
        let hex = digest
            .strip_prefix("sha256:")
            .ok_or_else(|| anyhow!("unsupported digest {digest}"))?;
        Ok(self.dir.join("blobs/sha256").join(hex))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.exists()).unwrap_or(false)
    }

    /// Stores `data`; returns its digest.
    pub fn put_blob(&self, data: &[u8]) -> anyhow::Result<String> {
        let digest = digest_of(data);
        let path = self.blob_path(&digest)?;
        if !path.exists() {
            fsutil::write_atomic(&path, data, Some(0o644))?;
        }
        Ok(digest)
    }

    /// Reads a blob and verifies its digest.
    pub fn read_blob(&self, digest: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let data =
            std::fs::read(&path).with_context(|| format!("reading blob {}", path.display()))?;
        if digest_of(&data) != digest {
            anyhow::bail!("blob {} is corrupt (digest mismatch)", path.display());
        }
        Ok(data)
    }

    /// Points `index.json` at a manifest (replacing any entry with the same tag).
    pub fn set_index(&self, manifest_desc: Descriptor) -> anyhow::Result<()> {
        let mut manifests = self
            .read_index()
            .map(|i| i.manifests().clone())
            .unwrap_or_default();
        manifests.retain(|m| ref_name(m) != ref_name(&manifest_desc));
        manifests.push(manifest_desc);
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()?;
        fsutil::write_atomic(
            &self.dir.join("index.json"),
            index.to_string_pretty()?.as_bytes(),
            Some(0o644),
        )
    }

    pub fn read_index(&self) -> anyhow::Result<ImageIndex> {
        let p = self.dir.join("index.json");
        let t = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&t).with_context(|| format!("parsing {}", p.display()))
    }

    /// The manifest descriptor for `tag` (or the only one when `tag` is `None`).
    pub fn find_manifest(&self, tag: Option<&str>) -> anyhow::Result<Descriptor> {
        let list = self.read_index()?.manifests().clone();
        match tag {
            Some(t) => list
                .into_iter()
                .find(|m| ref_name(m) == Some(t))
                .ok_or_else(|| anyhow!("no image tagged {t:?} in {}", self.dir.display())),
            None if list.len() == 1 => Ok(list.into_iter().next().unwrap()),
            None => Err(anyhow!(
                "{} holds {} images: pass --tag",
                self.dir.display(),
                list.len()
            )),
        }
    }
}

/// A built layer: gzip bytes plus the uncompressed digest (config `diff_id`).
pub struct Layer {
    pub gz: Vec<u8>,
    pub diff_id: String,
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h
}

fn add_dirs(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mtime: u64,
    done: &mut Vec<String>,
) -> anyhow::Result<()> {
    let mut acc = String::new();
    for part in path.split('/') {
        acc.push_str(part);
        acc.push('/');
        if !done.contains(&acc) {
            let mut h = header(tar::EntryType::Directory, 0o755, 0, mtime);
            b.append_data(&mut h, &acc, std::io::empty())?;
            done.push(acc.clone());
        }
    }
    Ok(())
}

fn add_tree(
    b: &mut tar::Builder<Vec<u8>>,
    src: &Path,
    dest: &str,
    mtime: u64,
    done: &mut Vec<String>,
) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .with_context(|| format!("reading {}", src.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        let dest_path = format!("{dest}/{name}");
        let ft = e.file_type()?;
        if ft.is_dir() {
            add_dirs(b, &dest_path, mtime, done)?;
            add_tree(b, &e.path(), &dest_path, mtime, done)?;
        } else if ft.is_file() {
            let data = std::fs::read(e.path())
                .with_context(|| format!("reading {}", e.path().display()))?;
            let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64, mtime);
            b.append_data(&mut h, &dest_path, data.as_slice())?;
        }
    }
    Ok(())
}

/// Builds the sink layer: the binary at /usr/local/bin/tumbleweed-sink and, if given,
/// the UI build at /usr/share/tumbleweed/ui.
pub fn build_layer(binary: &Path, ui_dist: Option<&Path>, mtime: u64) -> anyhow::Result<Layer> {
    let bin = std::fs::read(binary)
        .with_context(|| format!("reading the sink binary {}", binary.display()))?;
    let mut b = tar::Builder::new(Vec::new());
    let mut done = Vec::new();
    add_dirs(&mut b, "usr/local/bin", mtime, &mut done)?;
    let mut h = header(tar::EntryType::Regular, 0o755, bin.len() as u64, mtime);
    b.append_data(&mut h, BINARY_PATH, bin.as_slice())?;
    if let Some(ui) = ui_dist {
        add_dirs(&mut b, UI_PATH, mtime, &mut done)?;
        add_tree(&mut b, ui, UI_PATH, mtime, &mut done)?;
    }
    let tar = b.into_inner()?;
    let diff_id = digest_of(&tar);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    std::io::Write::write_all(&mut gz, &tar)?;
    Ok(Layer {
        gz: gz.finish()?,
        diff_id,
    })
}

/// RFC 3339 UTC time for a Unix timestamp, with whole seconds (`2024-02-29T23:59:59Z`), as
/// image configs carry it.
pub fn rfc3339(secs: u64) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn layer_is_reproducible_and_complete() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("sink");
        std::fs::write(&bin, b"\x7fELF fake").unwrap();
        let ui = d.path().join("dist");
        std::fs::create_dir_all(ui.join("assets")).unwrap();
        std::fs::write(ui.join("index.html"), "<html>").unwrap();
        std::fs::write(ui.join("assets/app.js"), "x").unwrap();
        let a = build_layer(&bin, Some(&ui), 0).unwrap();
        let b = build_layer(&bin, Some(&ui), 0).unwrap();
        assert_eq!(digest_of(&a.gz), digest_of(&b.gz));
        let mut names = Vec::new();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(a.gz.as_slice()));
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            names.push((
                e.path().unwrap().to_string_lossy().to_string(),
                e.header().mode().unwrap(),
            ));
        }
        assert!(names.contains(&("usr/local/bin/tumbleweed-sink".into(), 0o755)));
        assert!(names.contains(&("usr/share/tumbleweed/ui/index.html".into(), 0o644)));
        assert!(names.contains(&("usr/share/tumbleweed/ui/assets/app.js".into(), 0o644)));
    }
}
