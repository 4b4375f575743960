//! The profiles a watcher knows (built-ins, then the user's `--profiles-dir`) and the choice
//! of one for a header. Reads the profiles directory once, when the watcher is built.

use std::path::Path;
use std::sync::{Arc, LazyLock};

use super::{Profile, ProfileError, TimeWindow, BUILT_IN};
use crate::transform::records;
use crate::transform::streams::{self, StreamProfile};

/// The profiles a watcher knows: built-ins first, then the user's, in file-name order.
#[derive(Debug, Clone)]
pub struct Profiles {
    pub(super) list: Vec<Arc<Profile>>,
    /// User profiles of the other streams (`stream = "transactions"`), in file-name order.
    pub streams: Vec<Arc<crate::transform::streams::StreamProfile>>,
    /// The event-time window of profiles that set none (`--event-time-window`).
    pub(crate) window: TimeWindow,
}

static BUILT_INS: LazyLock<Profiles> = LazyLock::new(|| Profiles {
    window: TimeWindow::default(),
    streams: Vec::new(),
    list: BUILT_IN
        .iter()
        .map(|(name, text)| {
            // A startup invariant: the built-ins are tested (`built_ins_are_valid`).
            #[allow(clippy::expect_used)]
            Arc::new(Profile::from_toml(text, "built-in").expect(name))
        })
        .collect(),
});

impl Default for Profiles {
    fn default() -> Self {
        BUILT_INS.clone()
    }
}

/// The profile chosen for a header, with the header split by its delimiter.
#[derive(Debug, Clone)]
pub(crate) struct Detected {
    pub profile: Arc<Profile>,
    pub delimiter: u8,
    /// Header names as written (trimmed, unquoted), in file order.
    pub written: Vec<String>,
}

/// How choosing a profile for a header ended.
#[derive(Debug)]
pub(crate) enum Detection {
    Found(Detected),
    /// Several profiles read the same number of the header's columns: their names.
    Ambiguous(Vec<String>),
    /// No profile finds its required columns: each with what it lacks.
    NoFit(Vec<Miss>),
}

/// A profile that did not fit a header, for the whole-file error.
#[derive(Debug, Clone)]
pub struct Miss {
    pub name: String,
    pub expected: String,
    pub missing: Vec<String>,
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (lacks {}; expects {} in any order)",
            self.name,
            self.missing.join(", "),
            self.expected
        )
    }
}

impl Profiles {
    /// The built-in profiles and every `*.toml` file of `dir`; a user profile named like a
    /// built-in replaces it.
    ///
    /// # Errors
    /// The directory or a file cannot be read, a file is not a valid profile, or two files
    /// use the same name.
    pub fn load(dir: Option<&Path>) -> Result<Profiles, ProfileError> {
        let mut profiles = Profiles::default();
        let Some(dir) = dir else {
            return Ok(profiles);
        };
        let dir_err = |source| ProfileError::Dir {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(dir_err)? {
            let path = entry.map_err(dir_err)?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                paths.push(path);
            }
        }
        paths.sort();
        let mut user: Vec<Arc<Profile>> = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| ProfileError::Read {
                path: path.clone(),
                source,
            })?;
            let origin = path.display().to_string();
            if streams::is_stream_profile(&text) {
                let p = StreamProfile::from_toml(&text, &origin).map_err(|message| {
                    ProfileError::Invalid {
                        origin: origin.clone(),
                        message,
                    }
                })?;
                let same = user.iter().map(|u| (&u.name, &u.origin));
                let same = same.chain(profiles.streams.iter().map(|u| (&u.name, &u.origin)));
                if let Some((_, first)) = same.into_iter().find(|(n, _)| **n == p.name) {
                    return Err(ProfileError::DuplicateName {
                        name: p.name.clone(),
                        first: first.clone(),
                        second: origin,
                    });
                }
                profiles.streams.push(Arc::new(p));
                continue;
            }
            let profile = Profile::from_toml(&text, &origin)?;
            if let Some(first) = user.iter().find(|p| p.name == profile.name) {
                return Err(ProfileError::DuplicateName {
                    name: profile.name.clone(),
                    first: first.origin.clone(),
                    second: profile.origin.clone(),
                });
            }
            user.push(Arc::new(profile));
        }
        for p in user {
            match profiles.list.iter_mut().find(|b| b.name == p.name) {
                Some(built_in) => *built_in = p,
                None => profiles.list.push(p),
            }
        }
        Ok(profiles)
    }

    /// Profiles that set no `event_time_window` use `window`.
    pub fn with_event_time_window(mut self, window: TimeWindow) -> Profiles {
        self.window = window;
        self
    }

    /// Adds a profile, replacing one of the same name.
    pub fn add(&mut self, profile: Profile) {
        let profile = Arc::new(profile);
        match self.list.iter_mut().find(|p| p.name == profile.name) {
            Some(same) => *same = profile,
            None => self.list.push(profile),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Profile>> {
        self.list.iter()
    }

    /// Chooses the profile for a header line: of the profiles whose required columns the
    /// header has (names trimmed and compared lowercased, in any order), the one that reads
    /// the most of its columns.
    ///
    pub(crate) fn detect(&self, raw: &str, detected: u8) -> Detection {
        let mut fits: Vec<(usize, Detected)> = Vec::new();
        let mut misses = Vec::new();
        for profile in &self.list {
            let delimiter = profile.delimiter.unwrap_or(detected);
            let written = records::fields(raw, delimiter as char);
            let names: Vec<String> = written.iter().map(|n| n.to_lowercase()).collect();
            match profile.claims(&names) {
                Ok(claimed) => fits.push((
                    claimed,
                    Detected {
                        profile: profile.clone(),
                        delimiter,
                        written,
                    },
                )),
                Err(missing) => misses.push(Miss {
                    name: profile.name.clone(),
                    expected: profile
                        .expected_columns()
                        .join(&(delimiter as char).to_string()),
                    missing,
                }),
            }
        }
        let best = fits.iter().map(|(n, _)| *n).max();
        let mut best: Vec<Detected> = fits
            .into_iter()
            .filter(|(n, _)| Some(*n) == best)
            .map(|(_, d)| d)
            .collect();
        match best.len() {
            0 => Detection::NoFit(misses),
            1 => Detection::Found(best.remove(0)),
            _ => Detection::Ambiguous(best.iter().map(|d| d.profile.name.clone()).collect()),
        }
    }
}
