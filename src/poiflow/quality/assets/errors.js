// Count script errors in the data-errors attribute of the body (the browser test reads it).
window.poiflowErrors=[];
window.addEventListener("error",function(e){window.poiflowErrors.push(String(e.message));document.body&&(document.body.dataset.errors=window.poiflowErrors.length);});
