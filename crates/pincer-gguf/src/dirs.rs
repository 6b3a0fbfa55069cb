//! Pincer's own data directory. It is not OpenClaw's state dir: model files
//! are large, shared by every profile, and not part of a user's config.

use std::path::PathBuf;

use pincer_config::Env;

/// `$PINCER_DATA_DIR`, else `$XDG_DATA_HOME/pincer`, else `~/.local/share/pincer`.
pub fn data_dir(env: &Env) -> Option<PathBuf> {
    if let Some(dir) = env.var("PINCER_DATA_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = env.var("XDG_DATA_HOME") {
        return Some(PathBuf::from(xdg).join("pincer"));
    }
    env.var("HOME")
        .map(|h| PathBuf::from(h).join(".local").join("share").join("pincer"))
}

/// Where GGUF files go: `<data dir>/models`.
pub fn models_dir(env: &Env) -> Option<PathBuf> {
    data_dir(env).map(|d| d.join("models"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_precedence() {
        let env = Env::from_pairs(&[("HOME", "/h"), ("XDG_DATA_HOME", "/x")]);
        assert_eq!(data_dir(&env), Some(PathBuf::from("/x/pincer")));
        let env = Env::from_pairs(&[("HOME", "/h")]);
        assert_eq!(
            models_dir(&env),
            Some(PathBuf::from("/h/.local/share/pincer/models"))
        );
        let env = Env::from_pairs(&[("HOME", "/h"), ("PINCER_DATA_DIR", "/p")]);
        assert_eq!(models_dir(&env), Some(PathBuf::from("/p/models")));
        assert_eq!(data_dir(&Env::from_pairs(&[])), None);
    }
}
