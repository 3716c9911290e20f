"use strict";
// The token is the last part of /invite/<token>; it goes to the server in a POST, never into the page.
document.getElementById("token").value = decodeURIComponent(location.pathname.split("/").pop() || "");
