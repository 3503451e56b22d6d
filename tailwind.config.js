/** @type {import('tailwindcss').Config} */
module.exports = {
  content: [
    "./templates/**/*.html",
    "./opspulse/**/templates/**/*.html",
    "./opspulse/static/src/**/*.js",
  ],
  theme: {
    extend: {},
  },
  plugins: [],
};
