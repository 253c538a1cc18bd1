//! Settings › Users & permissions.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use model::{timefmt, Permission, Role, UserStatus, UserSummary};

use super::shell::current_user;
use crate::api::users::{list_users, ChangeRole, InviteUser, RemoveUser};
use crate::components::feedback::{last_error, ErrorBanner, FieldMessage};
use crate::error::AppError;

const READ_ONLY_NOTE: &str = "users-read-only";

#[component]
pub fn UsersPage() -> impl IntoView {
    let me = current_user();
    let can_manage = me.as_ref().is_some_and(|u| u.can(Permission::ManageUsers));
    let my_id = me.map(|u| u.id).unwrap_or_default();
    let invite = ServerAction::<InviteUser>::new();
    let change = ServerAction::<ChangeRole>::new();
    let remove = ServerAction::<RemoveUser>::new();
    let users = Resource::new(move || (invite.version().get(), change.version().get(), remove.version().get()), |_| list_users());
    view! {
        <Title text="Users & permissions"/>
        <header class="page-header">
            <div>
                <h1>"Users & permissions"</h1>
                <p class="lede">"Invite your team and choose what each person can change."</p>
            </div>
        </header>
        // No boundary around these: the users list has its own <Transition>, and a Suspense
        // around it (awaiting nothing itself) re-ran its children, so one resource was read by
        // several boundaries, which can leave a server-rendered response hanging
        // (leptos-rs/leptos#4851).
        {(!can_manage)
            .then(|| {
                view! {
                    <p class="notice" id=READ_ONLY_NOTE role="note">
                        {Permission::ManageUsers.denied_reason()}
                    </p>
                }
            })}
        <InviteCard invite can_manage/>
        <UsersTable users change remove can_manage my_id/>
    }
}

/// `aria-describedby` and `title` that explain why a control is disabled.
fn disabled_reason(can_manage: bool) -> (Option<&'static str>, Option<&'static str>) {
    if can_manage {
        (None, None)
    } else {
        (Some(READ_ONLY_NOTE), Some(Permission::ManageUsers.denied_reason()))
    }
}

#[component]
fn InviteCard(invite: ServerAction<InviteUser>, can_manage: bool) -> impl IntoView {
    let error = last_error(invite.value());
    let link = move || invite.value().get().and_then(Result::ok);
    let (described_by, reason) = disabled_reason(can_manage);
    view! {
        <section class="card" aria-labelledby="invite-heading">
            <h2 id="invite-heading">"Invite a user"</h2>
            <ActionForm action=invite>
                <ErrorBanner error/>
                <div class="form-row">
                    <div class="field grow">
                        <label for="invite-email">"Email"</label>
                        <input
                            id="invite-email"
                            name="email"
                            type="email"
                            required=true
                            disabled=!can_manage
                            aria-describedby=described_by
                        />
                        <FieldMessage error field="email"/>
                    </div>
                    <div class="field">
                        <label for="invite-role">"Permission"</label>
                        <select id="invite-role" name="role" disabled=!can_manage aria-describedby=described_by>
                            {Role::ALL
                                .into_iter()
                                .map(|role| {
                                    view! {
                                        <option value=role.as_str() selected=role == Role::Viewer>
                                            {role.label()}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                        <FieldMessage error field="role"/>
                    </div>
                    <button
                        type="submit"
                        class="btn btn-primary"
                        disabled=move || !can_manage || invite.pending().get()
                        title=reason
                        aria-describedby=described_by
                    >
                        "Invite user"
                    </button>
                </div>
            </ActionForm>
            <ul class="role-legend">
                {Role::ALL
                    .into_iter()
                    .map(|role| {
                        view! {
                            <li>
                                <strong>{role.label()}</strong>
                                ": "
                                {role.description()}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
            {move || {
                link()
                    .map(|link| {
                        view! {
                            <div class="alert alert-success" role="status">
                                <p>
                                    "Invitation created. Send this link to the person you invited; it works once and expires in 7 days."
                                </p>
                                <label class="visually-hidden" for="invite-link">"Invitation link"</label>
                                <input id="invite-link" class="copy-field" readonly=true value=link/>
                            </div>
                        }
                    })
            }}
        </section>
    }
}

#[component]
fn UsersTable(
    users: Resource<Result<Vec<UserSummary>, AppError>>,
    change: ServerAction<ChangeRole>,
    remove: ServerAction<RemoveUser>,
    can_manage: bool,
    my_id: String,
) -> impl IntoView {
    let change_error = last_error(change.value());
    let remove_error = last_error(remove.value());
    view! {
        <section class="card" aria-labelledby="users-heading">
            <h2 id="users-heading">"Users"</h2>
            <ErrorBanner error=change_error/>
            <ErrorBanner error=remove_error/>
            <Transition fallback=|| view! { <p class="loading">"Loading users…"</p> }>
                {move || {
                    let my_id = my_id.clone();
                    Suspend::new(async move {
                        match users.await {
                            Err(e) => view! { <div class="alert alert-error" role="alert">{e.to_string()}</div> }.into_any(),
                            Ok(users) => {
                                view! {
                                    <table class="table">
                                        <thead>
                                            <tr>
                                                <th scope="col">"Name"</th>
                                                <th scope="col">"Email"</th>
                                                <th scope="col">"Permission"</th>
                                                <th scope="col">"Status"</th>
                                                <th scope="col">"Added"</th>
                                                <th scope="col">
                                                    <span class="visually-hidden">"Actions"</span>
                                                </th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {users
                                                .into_iter()
                                                .map(|user| {
                                                    let is_me = user.id == my_id;
                                                    view! { <UserRow user change remove can_manage is_me/> }
                                                })
                                                .collect_view()}
                                        </tbody>
                                    </table>
                                }
                                    .into_any()
                            }
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn UserRow(
    user: UserSummary,
    change: ServerAction<ChangeRole>,
    remove: ServerAction<RemoveUser>,
    can_manage: bool,
    is_me: bool,
) -> impl IntoView {
    let (described_by, reason) = disabled_reason(can_manage);
    let select_id = format!("role-{}", user.id);
    let status = match user.status {
        UserStatus::Active => view! { <span class="badge badge-success">"Active"</span> },
        UserStatus::Invited => view! { <span class="badge badge-warning">"Invited"</span> },
    };
    let confirm = format!("Remove {}? They lose access to Tandem at once.", user.email);
    let remove_id = user.id.clone();
    view! {
        <tr>
            <th scope="row">
                {user.name.clone()}
                {is_me.then(|| view! { <span class="badge badge-muted">"You"</span> })}
            </th>
            <td>{user.email.clone()}</td>
            <td>
                <ActionForm action=change>
                    <input type="hidden" name="user_id" value=user.id.clone()/>
                    <div class="inline-form">
                        <label class="visually-hidden" for=select_id.clone()>
                            {format!("Permission for {}", user.email)}
                        </label>
                        <select id=select_id name="role" disabled=!can_manage aria-describedby=described_by>
                            {Role::ALL
                                .into_iter()
                                .map(|role| {
                                    view! {
                                        <option value=role.as_str() selected=role == user.role>
                                            {role.label()}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                        <button
                            type="submit"
                            class="btn btn-secondary btn-small"
                            disabled=!can_manage
                            title=reason
                            aria-describedby=described_by
                        >
                            "Save"
                        </button>
                    </div>
                </ActionForm>
            </td>
            <td>{status}</td>
            <td>{timefmt::date(user.created_at)}</td>
            <td class="actions">
                {(can_manage && !is_me)
                    .then(|| {
                        view! {
                            <details class="confirm">
                                <summary class="link-danger">"Remove"</summary>
                                <div class="confirm-panel">
                                    <p>{confirm}</p>
                                    <ActionForm action=remove>
                                        <input type="hidden" name="user_id" value=remove_id/>
                                        <button type="submit" class="btn btn-danger btn-small">"Remove user"</button>
                                    </ActionForm>
                                </div>
                            </details>
                        }
                    })}
            </td>
        </tr>
    }
}
