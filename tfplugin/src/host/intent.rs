//! What the CLI that started us is doing. The protocol does not say: Terraform 1.0's
//! `destroy` first runs a normal plan of the configuration (calling PlanResourceChange for
//! objects it will never create), and a refresh-only plan looks like any other read. So a
//! provider whose plan checks live systems (an object that "already exists") would block a
//! destroy. The CLI's own command line, read from /proc once at start, tells us.

/// The CLI run's purpose, as far as plans are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// plan/apply: creates are real, plan-time checks are useful.
    Normal,
    /// destroy, `plan -destroy`, `apply -destroy`: nothing will be created.
    Destroy,
    /// refresh, `-refresh-only`: nothing will be created or changed.
    RefreshOnly,
}

impl Intent {
    /// True when a planned create will not be applied in this run, so checks of objects to
    /// be created must not fail the plan.
    pub fn creates_nothing(self) -> bool {
        !matches!(self, Intent::Normal)
    }

    /// Reads the parent process's arguments (the CLI runs providers as direct children).
    pub fn of_parent() -> Intent {
        let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
        match std::fs::read(format!("/proc/{parent}/cmdline")) {
            Ok(raw) => {
                let args: Vec<String> = raw
                    .split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                Intent::from_args(&args)
            }
            Err(_) => Intent::Normal,
        }
    }

    /// `args` is the CLI's argv, program name first.
    pub fn from_args(args: &[String]) -> Intent {
        let rest = args.get(1..).unwrap_or_default();
        // Global options such as -chdir=DIR come before the subcommand.
        let command = rest.iter().find(|a| !a.starts_with('-'));
        let flag = |name: &str| {
            rest.iter().any(|a| {
                let bare = a.trim_start_matches('-');
                bare == name || bare.strip_prefix(name).is_some_and(|v| v == "=true")
            })
        };
        match command.map(String::as_str) {
            Some("destroy") => Intent::Destroy,
            Some("refresh") => Intent::RefreshOnly,
            Some("plan" | "apply") if flag("destroy") => Intent::Destroy,
            Some("plan" | "apply") if flag("refresh-only") => Intent::RefreshOnly,
            _ => Intent::Normal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(line: &str) -> Intent {
        let args: Vec<String> = line.split(' ').map(str::to_string).collect();
        Intent::from_args(&args)
    }

    #[test]
    fn reads_the_cli_subcommand_and_flags() {
        assert_eq!(intent("terraform apply -auto-approve"), Intent::Normal);
        assert_eq!(intent("terraform destroy -auto-approve"), Intent::Destroy);
        assert_eq!(intent("tofu -chdir=x apply -destroy"), Intent::Destroy);
        assert_eq!(intent("terraform plan -refresh-only"), Intent::RefreshOnly);
        assert_eq!(
            intent("terraform apply -refresh-only=true"),
            Intent::RefreshOnly
        );
        assert_eq!(intent("terraform refresh"), Intent::RefreshOnly);
        assert_eq!(intent("terraform plan -out=destroy"), Intent::Normal);
        assert_eq!(intent("terraform"), Intent::Normal);
        assert!(Intent::Destroy.creates_nothing() && !Intent::Normal.creates_nothing());
    }
}
