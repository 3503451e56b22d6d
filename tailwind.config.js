/** @type {import('tailwindcss').Config} */
module.exports = {
  // Dark mode follows the system setting of the merchant's device (or TV).
  darkMode: "media",
  content: [
    "./templates/**/*.html",
    "./opspulse/**/templates/**/*.html",
    "./opspulse/**/jinja2/**/*.html",
    "./opspulse/static/src/**/*.js",
  ],
  theme: {
    extend: {},
  },
  plugins: [],
};
