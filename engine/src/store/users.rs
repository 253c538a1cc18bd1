use super::{on_pool, Result, Store};

/// A user as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub password_hash: Option<&'a str>,
    pub invited_by: Option<&'a str>,
    pub created_at: i64,
}

const SUPER_ADMIN: &str = "super_admin";
const FIRST_ADMIN_FLAG: &str = "first_admin";

/// What may be done to a user only while another active Super Admin remains.
enum AdminChange<'a> {
    SetRole(&'a str),
    Delete,
}

macro_rules! insert_user {
    ($user:expr, $executor:expr) => {
        sqlx::query(
            "INSERT INTO users (id, email, name, role, password_hash, invited_by, created_at, activated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind($user.id)
        .bind($user.email)
        .bind($user.name)
        .bind($user.role)
        .bind($user.password_hash)
        .bind($user.invited_by)
        .bind($user.created_at)
        .bind($user.password_hash.map(|_| $user.created_at))
        .execute($executor)
        .await
    };
}

impl Store {
    pub async fn count_users(&self) -> Result<i64> {
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await)?;
        Ok(n)
    }

    /// Creates the installation's first user, once: `Ok(false)` when it already exists.
    pub async fn create_first_user(&self, user: &NewUser<'_>) -> Result<bool> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let flagged = sqlx::query("INSERT INTO instance_flags (name, set_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(FIRST_ADMIN_FLAG)
                .bind(user.created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut *tx).await?;
            if flagged == 0 || existing > 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_user!(user, &mut *tx)?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Fails with [`super::StoreError::Duplicate`] when the email is taken.
    pub async fn insert_user(&self, user: &NewUser<'_>) -> Result<()> {
        on_pool!(self, exec | pool | insert_user!(user, pool))?;
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>> {
        let row = on_pool!(self, |pool| sqlx::query_as::<_, UserRow>(
            "SELECT id, email, name, role, password_hash, created_at, last_login_at FROM users WHERE email = $1"
        )
        .bind(email)
        .fetch_optional(pool)
        .await)?;
        Ok(row)
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        let row = on_pool!(self, |pool| sqlx::query_as::<_, UserRow>(
            "SELECT id, email, name, role, password_hash, created_at, last_login_at FROM users WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        Ok(row)
    }

    /// Everyone, Super Admins first, then by name.
    pub async fn list_users(&self) -> Result<Vec<UserRow>> {
        let rows = on_pool!(self, |pool| sqlx::query_as::<_, UserRow>(
            "SELECT id, email, name, role, password_hash, created_at, last_login_at FROM users \
             ORDER BY CASE role WHEN 'super_admin' THEN 0 WHEN 'app_marketplace_access' THEN 1 ELSE 2 END, \
             LOWER(name), email"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows)
    }

    /// Changes a role unless that would leave no active Super Admin.
    /// `Ok(None)`: no such user; `Ok(Some(false))`: refused (last Super Admin).
    pub async fn set_role(&self, id: &str, role: &str) -> Result<Option<bool>> {
        self.change_guarding_admins(id, AdminChange::SetRole(role)).await
    }

    /// Deletes a user (their sessions and invitations go with them) unless they are the last
    /// active Super Admin. Same answers as [`Store::set_role`].
    pub async fn delete_user(&self, id: &str) -> Result<Option<bool>> {
        self.change_guarding_admins(id, AdminChange::Delete).await
    }

    /// Serialised by the first-admin flag row, which every such change locks first, so two admins
    /// demoting each other at once cannot both succeed.
    async fn change_guarding_admins(&self, id: &str, change: AdminChange<'_>) -> Result<Option<bool>> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE instance_flags SET set_at = set_at WHERE name = $1").bind(FIRST_ADMIN_FLAG).execute(&mut *tx).await?;
            let current: Option<String> =
                sqlx::query_scalar("SELECT role FROM users WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
            let Some(current) = current else {
                return Ok(None);
            };
            let demotes = match change {
                AdminChange::SetRole(role) => role != SUPER_ADMIN,
                AdminChange::Delete => true,
            };
            if current == SUPER_ADMIN && demotes {
                let others: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM users \
                     WHERE role = 'super_admin' AND password_hash IS NOT NULL AND id <> $1",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                if others == 0 {
                    return Ok(Some(false));
                }
            }
            match change {
                AdminChange::SetRole(role) => {
                    sqlx::query("UPDATE users SET role = $1 WHERE id = $2").bind(role).bind(id).execute(&mut *tx).await?
                }
                AdminChange::Delete => sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?,
            };
            tx.commit().await?;
            Ok(Some(true))
        })
    }

    /// An invited user accepts: name, password and activation in one step.
    pub async fn activate_user(&self, id: &str, name: &str, password_hash: &str, now: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE users SET name = $1, password_hash = $2, activated_at = $3, last_login_at = $3 WHERE id = $4")
                    .bind(name)
                    .bind(password_hash)
                    .bind(now)
                    .bind(id)
                    .execute(pool)
                    .await
        )?;
        Ok(())
    }

    pub async fn record_login(&self, id: &str, now: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool | sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2").bind(now).bind(id).execute(pool).await
        )?;
        Ok(())
    }
}
