// Sign in and register: POST /api/users/login and /api/users/register, the accounts and
// tokens every client uses. A refusal shows the daemon's own message.

import { $, errorText, say, show } from "./dom.js";

export class LoginView {
  constructor(api, onSignedIn) {
    this.api = api;
    this.onSignedIn = onSignedIn;
    this.section = $("#view-login");
    this.loginForm = $("#login-form");
    this.registerForm = $("#register-form");
    this.loginForm.addEventListener("submit", (e) => this.submit(e, this.loginForm, false));
    this.registerForm.addEventListener("submit", (e) => this.submit(e, this.registerForm, true));
  }

  show(mode) {
    show(this.section, true);
    const register = mode === "register";
    show(this.registerForm, register);
    show(this.loginForm, !register);
    const form = register ? this.registerForm : this.loginForm;
    say($(".error", form), "");
    form.elements.email.focus();
  }

  hide() {
    show(this.section, false);
    for (const form of [this.loginForm, this.registerForm]) form.elements.password.value = "";
    this.registerForm.elements.confirm.value = "";
  }

  async submit(event, form, register) {
    event.preventDefault();
    const error = $(".error", form);
    const button = $("button[type=submit]", form);
    const email = form.elements.email.value.trim();
    const password = form.elements.password.value;
    if (register && password !== form.elements.confirm.value) {
      say(error, "the two passwords differ");
      return;
    }
    say(error, "");
    button.disabled = true;
    try {
      if (register) {
        await this.api.json("POST", "api/users/register", { body: { email, password }, auth: false });
      }
      const answer = await this.api.json("POST", "api/users/login", {
        body: { email, password },
        auth: false,
      });
      this.api.signIn({ token: answer.token, email, expires_at: answer.expires_at });
      this.onSignedIn();
    } catch (err) {
      say(error, errorText(err));
      form.elements.password.select();
    } finally {
      button.disabled = false;
    }
  }
}
