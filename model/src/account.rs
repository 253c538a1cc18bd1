use serde::{Deserialize, Serialize};

use crate::{FieldError, Permission, Role};

/// A normalised (trimmed, lower-case) email address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Email, FieldError> {
        let s = raw.trim().to_lowercase();
        let invalid = || FieldError::new(field, "Enter a valid email address, like name@example.com.");
        if s.is_empty() {
            return Err(FieldError::new(field, "Enter an email address."));
        }
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = s.split_once('@').ok_or_else(invalid)?;
        let domain_ok =
            !domain.contains('@') && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains("..");
        if local.is_empty() || !domain_ok {
            return Err(invalid());
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password that meets Tandem's policy. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 200;

    pub fn parse(field: &str, raw: &str) -> Result<Password, FieldError> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(FieldError::new(field, format!("Use at least {} characters.", Self::MIN_CHARS)));
        }
        if n > Self::MAX_CHARS {
            return Err(FieldError::new(field, format!("Use at most {} characters.", Self::MAX_CHARS)));
        }
        Ok(Password(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(**redacted**)")
    }
}

/// A person's name as shown in the console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(field: &str, raw: &str) -> Result<DisplayName, FieldError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(FieldError::new(field, "Enter a name."));
        }
        if s.chars().count() > 100 || s.chars().any(char::is_control) {
            return Err(FieldError::new(field, "Use at most 100 ordinary characters."));
        }
        Ok(DisplayName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The signed-in user, as the pages see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
}

impl SessionUser {
    pub fn can(&self, permission: Permission) -> bool {
        self.role.allows(permission)
    }

    /// Up to two initials for the avatar in the top navigation.
    pub fn initials(&self) -> String {
        let initials: String = self.name.split_whitespace().filter_map(|w| w.chars().next()).take(2).collect();
        if initials.is_empty() {
            self.email.chars().take(1).collect::<String>().to_uppercase()
        } else {
            initials.to_uppercase()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserStatus {
    Active,
    /// Invited and not yet accepted.
    Invited,
}

/// One row of the Users & permissions table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: UserStatus,
    /// Unix milliseconds.
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(Email::parse("email", "  Ana@Example.COM ").unwrap().as_str(), "ana@example.com");
        for bad in ["", "ana", "ana@", "@example.com", "ana@example", "a b@example.com", "a@b@c.com", "ana@.com", "ana@example..com"] {
            let err = Email::parse("email", bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad:?}");
        }
    }

    #[test]
    fn password_policy_and_redaction() {
        assert!(Password::parse("password", "short").is_err());
        let p = Password::parse("password", "long enough pw").unwrap();
        assert_eq!(format!("{p:?}"), "Password(**redacted**)");
        assert!(Password::parse("password", &"x".repeat(201)).is_err());
    }

    #[test]
    fn names_and_initials() {
        assert!(DisplayName::parse("name", "   ").is_err());
        let u = SessionUser { id: "1".into(), email: "ana@example.com".into(), name: "Ana de Souza".into(), role: Role::Viewer };
        assert_eq!(u.initials(), "AD");
        let nameless = SessionUser { name: String::new(), ..u };
        assert_eq!(nameless.initials(), "A");
    }
}
