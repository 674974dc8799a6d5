// A real Express 4 upstream for the route-agreement test: one handler per
// route of internal/routecases' policy, written as an Express developer
// would, with Express's defaults (case-insensitive, non-strict routing,
// HEAD served by GET handlers) and method-override honouring the three
// override headers and the _method query parameter on POST. Each handler
// answers 200 with its name in X-Handler. It listens on 127.0.0.1 and
// prints "listening PORT" once ready.
'use strict';
const express = require('express');
const methodOverride = require('method-override');

const app = express();
for (const getter of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override', '_method']) {
  app.use(methodOverride(getter));
}
const handler = (name) => (req, res) => res.set('X-Handler', name).end();

app.all('/', handler('root'));
app.all('/admin', handler('admin'));
app.all('/admin/*', handler('admin-any'));
app.all('/console/*', handler('console-any'));
app.get('/users/:id', handler('users-get'));
app.all('/pets/:petId', (req, res, next) =>
  req.hostname === 'api.example.com' ? handler('pet-api')(req, res) : next());
app.all('/pets/*', handler('pets-any'));
app.all('/files/readme', handler('readme'));
app.all('/files/:name', handler('file'));
app.all('*', handler('public'));

const server = app.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
