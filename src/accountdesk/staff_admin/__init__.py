"""Staff administration: admins and reseller admins invite, edit and deactivate back-office users; each user's
own account page (password, two-step sign-in). Above `accounts`: reseller staff belong to reseller accounts."""
