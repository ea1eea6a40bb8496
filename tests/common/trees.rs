//! Random directory trees for hashing and round-trip tests: nested folders,
//! empty files and folders, unicode and spaces in names.

use std::path::Path;

/// A small deterministic generator, so a failing tree can be reproduced
/// from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAME_PARTS: &[&str] = &[
    "a",
    "b",
    "data",
    "é",
    "日本",
    "ü-x",
    "with space",
    "a-b",
    "a_b",
    "Z",
    "0",
    "naïve",
    "🙂",
    "x.csv",
];

pub fn random_tree(rng: &mut Rng, dir: &Path, depth: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let entries = 1 + rng.below(5);
    for i in 0..entries {
        let name = format!(
            "{}{}{}",
            NAME_PARTS[rng.below(NAME_PARTS.len() as u64) as usize],
            NAME_PARTS[rng.below(NAME_PARTS.len() as u64) as usize],
            i
        );
        let path = dir.join(&name);
        match rng.below(10) {
            0..=1 if depth < 3 => random_tree(rng, &path, depth + 1),
            2 => std::fs::create_dir_all(&path).unwrap(), // empty folder: left out by DVC
            3 => std::fs::write(&path, b"").unwrap(),
            _ => {
                let len = rng.below(3000) as usize;
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                std::fs::write(&path, bytes).unwrap();
            }
        }
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Same regular files with the same bytes (empty folders do not count:
/// DVC does not track them).
pub fn assert_same_files(expected: &Path, actual: &Path, seed: u64) {
    fn files(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    files(expected, expected, &mut a);
    files(actual, actual, &mut b);
    a.sort();
    b.sort();
    let names = |v: &Vec<(String, Vec<u8>)>| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "seed {seed}: file lists differ");
    assert!(a == b, "seed {seed}: file contents differ");
}
