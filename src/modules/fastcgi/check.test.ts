import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadAppHost } from '../../config/index.js';
import { fastCgiWarnings } from './check.js';

const config = `<configuration>
<system.applicationHost>
  <applicationPools><add name="php" /></applicationPools>
  <sites><site name="s" id="1"><application path="/" applicationPool="php"><virtualDirectory path="/" physicalPath="/srv/www" /></application>
    <bindings><binding protocol="http" bindingInformation="*:80:" /></bindings></site></sites>
</system.applicationHost>
<system.webServer>
  <fastCgi>
    <application fullPath="/bin/sh" arguments="-e" />
    <application fullPath="C:\\PHP\\php-cgi.exe" />
  </fastCgi>
  <handlers>
    <add name="ok" path="*.sh" verb="*" modules="FastCgiModule" scriptProcessor="/bin/sh|-e" />
    <add name="fpm" path="*.fpm" verb="*" modules="FastCgiModule" scriptProcessor="unix:/run/php/php8.2-fpm.sock" />
    <add name="typo" path="*.php" verb="*" modules="FastCgiModule" scriptProcessor="/usr/bin/php-cgi" />
  </handlers>
</system.webServer>
</configuration>`;

test('FastCGI handlers naming no application and programs that cannot start are reported at their line', () => {
  const appHost = loadAppHost('/etc/wharf/applicationHost.config', config, { systemDrive: '/srv/wharf' });
  const lines = fastCgiWarnings(appHost, '/srv/wharf').map((w) => `${w.position.line}: ${w.message}`);
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[0]!, /^15: handler typo: the scriptProcessor "\/usr\/bin\/php-cgi" matches no <application> of system.webServer\/fastCgi/);
  assert.match(lines[1]!, /^10: fastCgi application C:\\PHP\\php-cgi.exe: \/srv\/wharf\/PHP\/php-cgi.exe does not exist — point fullPath .* at the Linux program/);
});
